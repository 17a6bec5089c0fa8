import numpy as np
import pytest
import torch

from str_lightning.body import joints as J

# Index lists as published by SPIN/VIBE/TCMR, typed in here as an independent check.
H36M_TO_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]
SPIN_JOINT_MAP = [24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31,
                  32, 33, 34, 8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52,
                  53, 24, 26, 25, 28, 27]


def test_set_sizes_and_unique_names():
    sizes = {"smpl24": 24, "spin49": 49, "common14": 14, "h36m17": 17, "mpii3d17": 17}
    for name, size in sizes.items():
        names = J.joint_names(name)
        assert len(names) == size
        assert len(set(names)) == size, name
    assert len(J.SMPL_PARENTS) == 24 and J.SMPL_PARENTS[0] == -1
    assert all(p < i for i, p in enumerate(J.SMPL_PARENTS))


def test_spin_mapping_matches_spin_joint_map():
    assert list(J.SPIN49_FROM_SMPLX54) == SPIN_JOINT_MAP


def test_h36m_to_common_by_name_matches_h36m_to_j14():
    dst, src = J.conversion_indices("h36m17", "common14")
    assert list(dst) == list(range(14))
    assert list(src) == H36M_TO_J14


def test_common_is_spin_slice_and_roots():
    assert J.COMMON14 == J.SPIN49[25:39]
    assert J.ROOTS["common14"] == (2, 3)
    assert J.ROOTS["mpii3d17"] == (14,)


def test_convert_fills_missing_with_zero_confidence():
    x = np.arange(14 * 3, dtype=np.float32).reshape(14, 3) + 1
    spin = J.convert_joints(x, "common14", "spin49")
    assert spin.shape == (49, 3)
    np.testing.assert_array_equal(spin[25:39], x)
    assert not spin[:25].any() and not spin[39:].any()  # e.g. OpenPose slots: zero incl. confidence
    back = J.convert_joints(torch.from_numpy(spin), "spin49", "common14")
    np.testing.assert_array_equal(back.numpy(), x)


def test_convert_keeps_batch_dims_and_rejects_wrong_count():
    x = torch.randn(2, 5, 17, 3)
    assert J.convert_joints(x, "h36m17", "mpii3d17").shape == (2, 5, 17, 3)
    with pytest.raises(ValueError, match="h36m17 has 17 joints"):
        J.convert_joints(torch.randn(4, 14, 3), "h36m17", "common14")
    with pytest.raises(KeyError, match="unknown joint set"):
        J.joint_names("coco")
