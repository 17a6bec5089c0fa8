"""The recipes in configs/: each prints what its expected file in tests/expected_recipes/ holds,
the paper's training values, the table in docs/training.md, and the guards against
misconfiguration.

After a deliberate change to what a recipe prints, regenerate the expected files and review the
diff:  python tests/test_recipes.py  (then git diff tests/expected_recipes)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from cli_runners import run_cli_in_process
from helpers import recipes
from training_helpers import tiny_config, write_config

from datamodules.converters import released_file
from datamodules.datamodule import ShardDataModule
from datamodules.loading import rank_batch_split, window_count
from datamodules.schema import read_manifest
from datamodules.synthetic.card import is_synthetic_benchmark
from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.app.main_job import synthetic_root
from str_lightning.evaluation.metrics import METRIC_LABELS
from str_lightning.evaluation.published import STR_TABLE1, STR_TABLE2
from str_lightning.reporting.stats import welch_seeds_needed

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
EXPECTED = REPO / "tests" / "expected_recipes"
REGENERATE = "python tests/test_recipes.py"


def recipe_names() -> list[str]:
    """Every recipe (helpers.recipes), its files relative to configs/ joined by " + "."""
    return sorted(" + ".join(str(path.relative_to(CONFIGS)) for path in recipe)
                  for recipe in recipes(CONFIGS))


def config_args(name: str) -> list[str]:
    """The --config arguments of a recipe (its files, relative to configs/, joined by " + ")."""
    return [arg for part in name.split(" + ") for arg in ("--config", str(CONFIGS / part))]


def command(name: str) -> str:
    """The command line whose output a recipe's expected file holds."""
    files = " ".join(f"--config configs/{part}" for part in name.split(" + "))
    return f"str-lightning fit {files} --print_config"


def expected_file(name: str) -> Path:
    """tests/expected_recipes/<the recipe's path>; for several files, the first one's path
    without .yaml, then "+" and each further file relative to the first one's directory."""
    first, *more = (CONFIGS / part for part in name.split(" + "))
    if not more:
        return EXPECTED / first.relative_to(CONFIGS)
    return EXPECTED / first.relative_to(CONFIGS).parent / "+".join(
        [first.stem, *(os.path.relpath(path, first.parent) for path in more)])


# The recipes of docs/training.md's table (with PER_TEST_SET below)
RECIPES = [
    "experiment/synthetic_str.yaml", "experiment/synthetic_tcmr.yaml",
    "experiment/synthetic_vibe.yaml", "experiment/synthetic_str_literal_aux.yaml",
    "experiment/paper_str_3dpw.yaml", "experiment/paper_str_no3dpw.yaml",
    "experiment/paper_str_no3dpw_literal_aux.yaml", "experiment/paper_tcmr_3dpw.yaml",
    "experiment/paper_tcmr_no3dpw.yaml", "experiment/paper_vibe_no3dpw.yaml",
    *(name for name in recipe_names() if name.startswith("ablations/"))]

# TCMR's released training configs (configs/repr_*.yaml of hongsukchoi/TCMR_RELEASE at c41fdd7)
# and the db file its loaders open for each (lib/dataset/_dataset_{2d,3d}.py ``load_db`` on
# cfg.TITLE; evaluate.py for the test files), transcribed by hand. Every one of them also has
# DATASET.SEQLEN 16, BATCH_SIZE 32, DATA_2D_RATIO 0.6, NUM_ITERS_PER_EPOCH 500, GEN_OPTIM Adam,
# GEN_LR 5e-5, GEN_WD 0, LR_PATIENCE 5 and train.py's ReduceLROnPlateau(mode min, factor 0.1)
# stepped on the validation PA-MPJPE (TCMR_COMMON).
TCMR_COMMON = {"SEQLEN": 16, "BATCH_SIZE": 32, "DATA_2D_RATIO": 0.6, "NUM_ITERS_PER_EPOCH": 500,
               "GEN_OPTIM": "Adam", "GEN_LR": 5e-5, "GEN_WD": 0.0, "LR_PATIENCE": 5,
               "SCHEDULER": ("ReduceLROnPlateau", "min", 0.1), "MONITOR": "pa_mpjpe",
               "BATCH_SPLIT": (int(32 * 0.6), 32 - int(32 * 0.6))}  # lib/dataset/_loaders.py
TCMR_RELEASED = {
    "repr_table4_3dpw_model": {
        "END_EPOCH": 30, "OVERLAP": True, "DATASET_EVAL": "3dpw",
        "DATASETS_2D": ["insta_train_db.h5"],
        "DATASETS_3D": ["3dpw_train_occ_db.pt", "mpii3d_train_scale12_occ_db.pt",
                        "h36m_train_25fps_occ_db.pt"],
        "H36M_SMPL": False, "VAL": "3dpw_val_db.pt", "TEST": {"3dpw": "3dpw_test_db.pt"}},
    "repr_table4_h36m_mpii3d_model": {
        "END_EPOCH": 45, "OVERLAP": True, "DATASET_EVAL": "3dpw",
        "DATASETS_2D": ["insta_train_db.h5", "posetrack_train_db.pt"],
        "DATASETS_3D": ["3dpw_train_db.pt", "mpii3d_train_scale12_db.pt", "h36m_train_25fps_db.pt"],
        "H36M_SMPL": True, "VAL": "3dpw_val_db.pt",
        "TEST": {"mpii3d": "mpii3d_val_scale12_db.pt", "h36m": "h36m_test_25fps_nosmpl_db.pt"}},
    "repr_table6_3dpw_model": {
        "END_EPOCH": 45, "OVERLAP": False, "DATASET_EVAL": "3dpw",
        "DATASETS_2D": ["insta_train_db.h5", "posetrack_train_occ_db.pt"],
        "DATASETS_3D": ["mpii3d_train_scale12_new_occ_db.pt", "h36m_train_25fps_occ_db.pt"],
        "H36M_SMPL": True, "VAL": "3dpw_val_db.pt", "TEST": {"3dpw": "3dpw_test_db.pt"}},
    "repr_table6_h36m_model": {
        "END_EPOCH": 45, "OVERLAP": False, "DATASET_EVAL": "h36m",
        "DATASETS_2D": ["insta_train_db.h5"],
        "DATASETS_3D": ["mpii3d_train_scale1_db.pt", "h36m_train_25fps_tight_db.pt"],
        "H36M_SMPL": True, "VAL": "h36m_test_front_25fps_tight_db.pt",
        "TEST": {"h36m": "h36m_test_front_25fps_tight_nosmpl_db.pt"}},
    "repr_table6_mpii3d_model": {
        "END_EPOCH": 30, "OVERLAP": False, "DATASET_EVAL": "3dpw",
        "DATASETS_2D": ["insta_train_db.h5", "posetrack_train_db.pt"],
        "DATASETS_3D": ["mpii3d_train_scale12_db.pt", "h36m_train_25fps_db.pt"],
        "H36M_SMPL": True, "VAL": "3dpw_val_db.pt", "TEST": {"mpii3d": "mpii3d_val_scale12_db.pt"}},
}
# The paper (§3.1) states these for STR; where it is silent, STR takes TCMR's value. Its §3.3:
# "we have not obtained the SMPL annotations of Human3.6M".
PAPER_STATES = {"SEQLEN": 16, "BATCH_SIZE": 32, "GEN_OPTIM": "Adam", "GEN_LR": 5e-5,
                "LR_PATIENCE": 5, "END_EPOCH": 30, "H36M_SMPL": False}
PER_TEST_SET = {f"experiment/paper_{model}_{title[5:-6]}.yaml": (model, title)
                for model in ("str", "tcmr") for title in TCMR_RELEASED}
PAPER_RECIPES = sorted([*(name for name in RECIPES if "synthetic" not in name), *PER_TEST_SET])


def as_tcmr_config(config: dict) -> dict:
    """A printed recipe in the vocabulary of TCMR's configs (the schedule as TCMR's keys), its
    split directories below the data root."""
    model, data, trainer = config["model"]["init_args"], config["data"], config["trainer"]

    def below_root(path: str) -> str:
        return str(Path(path).relative_to("data/shards"))

    groups = {g: [below_root(d["path"]) for d in data["train_datasets"] if d["group"] == g]
              for g in ("2d", "3d")}
    split = rank_batch_split(data["batch_size"], data["ratio_2d"], 1, 0, ["2d", "3d"])
    seq_len, stride = data["seq_len"], data["stride"]
    scheduler = model["scheduler"]
    (val_name, val_path), = data["val_datasets"].items()
    h36m = [d for d in data["train_datasets"] if "/h36m/" in d["path"]]
    return {
        "SEQLEN": seq_len, "BATCH_SIZE": data["batch_size"], "DATA_2D_RATIO": data["ratio_2d"],
        "BATCH_SPLIT": (split["2d"], split["3d"]), "NUM_ITERS_PER_EPOCH": data["steps_per_epoch"],
        "GEN_OPTIM": model["optimizer"]["class_path"].rsplit(".", 1)[1],
        "GEN_LR": model["optimizer"]["init_args"]["lr"],
        "GEN_WD": model["optimizer"]["init_args"]["weight_decay"],
        "LR_PATIENCE": scheduler["init_args"]["patience"],
        "SCHEDULER": (scheduler["class_path"].rsplit(".", 1)[1], scheduler["init_args"]["mode"],
                      scheduler["init_args"]["factor"]),
        "MONITOR": model["monitor"].removeprefix(f"val/{val_name}/"),
        "END_EPOCH": trainer["max_epochs"],
        # TCMR: stride = int(T * (1 - overlap) + 0.5), overlap (T - 1) / T when OVERLAP is true
        "OVERLAP": {1: True, seq_len: False}[stride],
        "DATASET_EVAL": val_name, "DATASETS_2D": groups["2d"], "DATASETS_3D": groups["3d"],
        "H36M_SMPL": bool(h36m) and "h36m" not in data["ignore_smpl"],
        "VAL": below_root(val_path),
        "TEST": {name: below_root(path) for name, path in data["test_datasets"].items()},
        "skip_short_clips": data["skip_short_clips"],
        "weights": {d["weight"] for d in data["train_datasets"]},
        "monitor_is_val": model["monitor"].startswith(f"val/{val_name}/"),
    }


def in_directories(release: dict) -> dict:
    """TCMR's config with each file name replaced by its shard directory (the file map)."""
    def home(name: str) -> str:
        return released_file("tcmr", name).directory

    return {**release, "DATASETS_2D": [home(n) for n in release["DATASETS_2D"]],
            "DATASETS_3D": [home(n) for n in release["DATASETS_3D"]], "VAL": home(release["VAL"]),
            "TEST": {name: home(n) for name, n in release["TEST"].items()}}


@pytest.mark.parametrize("name", sorted(PER_TEST_SET))
def test_per_test_set_recipes_print_tcmrs_released_config_value_by_value(name):
    """TCMR-like recipes are TCMR's release, value by value; STR recipes differ exactly where
    the paper states another value (30 epochs, no Human3.6M SMPL)."""
    model, title = PER_TEST_SET[name]
    released = in_directories({**TCMR_COMMON, **TCMR_RELEASED[title]})
    expected = released if model == "tcmr" else {**released, **PAPER_STATES}
    ours = as_tcmr_config(printed(*config_args(name)))
    # TCMR's loaders: windows inside videos of >= T rows (split_into_chunks), each 2D/3D group
    # a ConcatDataset (mixing in proportion to window counts), model selection on val PA-MPJPE
    assert ours.pop("skip_short_clips") and ours.pop("weights") == {"windows"}
    assert ours.pop("monitor_is_val")
    assert ours == expected


@cache
def printed_text(*args: str) -> str:
    """What ``str-lightning fit ARGS --print_config`` prints, without its first line (the
    Lightning version)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        STRLightningCLI(args=["fit", *args, "--print_config"])
    assert exit_info.value.code == 0, args
    text = out.getvalue()
    return text.split("\n", 1)[1] if text.startswith("# lightning") else text


def printed(*args: str) -> dict:
    """The config ``str-lightning fit ARGS --print_config`` prints, with data paths joined to
    ``data.root`` (so configs with and without a root compare)."""
    return joined_to_root(yaml.safe_load(printed_text(*args)))


def joined_to_root(config: dict) -> dict:
    data = config["data"]
    root = data.pop("root", None)

    def at_root(path):
        return str(Path(root) / path) if root and path else path

    for dataset in data["train_datasets"] or []:
        dataset["path"] = at_root(dataset["path"])
    for key in ("val_datasets", "test_datasets", "predict_datasets"):
        data[key] = {name: at_root(path) for name, path in (data[key] or {}).items()}
    data["motion_dataset"] = at_root(data["motion_dataset"])
    return config


def flat(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}
    if isinstance(node, list):
        return {k: v for i, value in enumerate(node) for k, v in flat(value, f"{prefix}{i}.").items()}
    return {prefix[:-1]: node}


def differences(expected: dict, got: dict) -> list[str]:
    """The dotted keys whose values differ, with both values."""
    want, have = flat(expected), flat(got)

    def shown(values: dict, key: str) -> str:
        return repr(values[key]) if key in values else "(absent)"

    differing = [f"{key}: expected {shown(want, key)}, prints {shown(have, key)}"
                 for key in sorted(want.keys() | have.keys())
                 if key not in want or key not in have or want[key] != have[key]]
    if not differing and expected != got:  # flat() lists no key of an empty list or mapping
        differing = ["an empty list or mapping: expected and printed differ"]
    return differing


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_prints_its_expected_file(name):
    path = expected_file(name)
    assert path.is_file(), f"{name}: no expected file {path.relative_to(REPO)}; run {REGENERATE}"
    expected = yaml.safe_load(path.read_text())
    differing = differences(expected, yaml.safe_load(printed_text(*config_args(name))))
    assert not differing, (
        f"`{command(name)}` no longer prints {path.relative_to(REPO)}:\n  " + "\n  ".join(differing)
        + f"\nIf the change is deliberate, regenerate the expected files with {REGENERATE} and "
        "commit them with the change.")


def test_every_expected_file_belongs_to_a_recipe():
    stale = set(EXPECTED.rglob("*.yaml")) - {expected_file(name) for name in recipe_names()}
    assert not stale, f"expected files of no recipe: {sorted(stale)}; run {REGENERATE}"


def write_expected_files() -> None:
    """tests/expected_recipes/ anew: what every recipe prints now."""
    for old in EXPECTED.rglob("*.yaml"):
        old.unlink()
    for name in recipe_names():
        path = expected_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {command(name)}\n# (written by {REGENERATE}; tests/test_recipes.py checks "
                        f"it)\n{printed_text(*config_args(name))}")
        print(path.relative_to(REPO))
    for directory in sorted(EXPECTED.rglob("*"), reverse=True):  # those of no recipe any more
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


@pytest.mark.parametrize("name", PAPER_RECIPES)
def test_paper_recipes_print_the_papers_training_values(name):
    config = printed(*config_args(name))
    model, data, trainer = config["model"]["init_args"], config["data"], config["trainer"]
    assert model["optimizer"]["class_path"] == "torch.optim.Adam"
    assert model["optimizer"]["init_args"]["lr"] == 5e-5
    assert model["optimizer"]["init_args"]["weight_decay"] == 0
    scheduler = model["scheduler"]
    assert scheduler["class_path"] == "torch.optim.lr_scheduler.ReduceLROnPlateau"
    assert (scheduler["init_args"]["mode"], scheduler["init_args"]["factor"],
            scheduler["init_args"]["patience"]) == ("min", 0.1, 5)
    assert model["monitor"] == ("val/h36m/pa_mpjpe" if "table6_h36m" in name
                                else "val/3dpw/pa_mpjpe")
    assert rank_batch_split(data["batch_size"], data["ratio_2d"], 1, 0, ["2d", "3d"]) == {
        "2d": 19, "3d": 13}
    epochs = (TCMR_RELEASED[PER_TEST_SET[name][1]]["END_EPOCH"] if name in PER_TEST_SET
              and PER_TEST_SET[name][0] == "tcmr" else 30)
    assert (data["seq_len"], trainer["max_epochs"], data["steps_per_epoch"]) == (16, epochs, 500)
    assert data["skip_short_clips"]
    # STR: the paper had no Human3.6M SMPL; TCMR-like: as TCMR, which drops it only in the mix
    # of repr_table4_3dpw_model (the one reading 3dpw/train-occ)
    paths = [d["path"] for d in data["train_datasets"]]
    is_str = model["encoder"]["class_path"].endswith("STREncoder")
    assert ("h36m" in data["ignore_smpl"]) == (any("/h36m/" in p for p in paths) and (
        is_str or "data/shards/3dpw/train-occ" in paths))
    assert (model["body_model"], model["spin_checkpoint"]) == ("???", "???")
    assert model["edge_mode"] == "tcmr"
    assert {d["weight"] for d in data["train_datasets"]} == {"windows"}
    trains_on_3dpw = any("3dpw" in d["path"] for d in data["train_datasets"])
    assert trains_on_3dpw == ("table4" in name or name.endswith("_3dpw.yaml")
                              and "table6" not in name)
    if name.startswith("ablations/"):
        assert next(iter(data["test_datasets"])) == "mpii3d"  # Table 2 is on MPI-INF-3DHP


# ----------------------------------------------------------------------------- docs table

ENCODER_NAMES = {"STREncoder": "STR", "TCMREncoder": "TCMR-like", "VIBEEncoder": "VIBE-like"}


def recipe_row(name: str, config: dict) -> list[str]:
    """The row of docs/training.md's recipe table for ``configs/<name>``."""
    model, data, trainer = config["model"]["init_args"], config["data"], config["trainer"]
    encoder = model["encoder"]
    switched_off = [key[4:] for key, value in encoder["init_args"].items()
                    if key.startswith("use_") and value is False]
    if not model.get("supervise_auxiliary", True) and encoder["class_path"].endswith("STREncoder"):
        switched_off.append("aux supervision")
    model_cell = ENCODER_NAMES[encoder["class_path"].rsplit(".", 1)[1]] + "".join(
        f", no {part}" for part in switched_off)
    split = rank_batch_split(data["batch_size"], data["ratio_2d"], 1, 0, ["2d", "3d"])
    optimizer, scheduler = model["optimizer"], model["scheduler"]

    common = os.path.commonpath([d["path"] for d in data["train_datasets"]])

    def names(group: str) -> str:  # split directories below the data root
        return ", ".join(str(Path(d["path"]).relative_to(common))
                         for d in data["train_datasets"] if d["group"] == group)

    weights = {str(d["weight"]) for d in data["train_datasets"]}
    mixing = "by windows" if weights == {"windows"} else "weights " + "/".join(sorted(weights))
    return [
        f"`{name}`", model_cell,
        " / ".join("required" if v == "???" else str(v or "none")
                   for v in (model["body_model"], model["spin_checkpoint"])),
        f"{optimizer['class_path'].rsplit('.', 1)[1]} {optimizer['init_args']['lr']:g}",
        schedule_cell(scheduler, model["scheduler_interval"], trainer["gradient_clip_val"]
                      or model.get("generator_clip_norm")),
        f"{split['2d']} + {split['3d']}", str(data["seq_len"]),
        f"{trainer['max_epochs']} × {data['steps_per_epoch']}",
        f"2D: {names('2d')}; 3D: {names('3d')}" + "".join(
            f"; no SMPL: {', '.join(data['ignore_smpl'])}" for _ in data["ignore_smpl"][:1]),
        f"{data['stride']}, {mixing}",
        f"{', '.join(data['val_datasets'])} → {', '.join(data['test_datasets'])}",
        model["edge_mode"],
    ]


def schedule_cell(scheduler: dict, interval: str, clip: float | None) -> str:
    """The learning-rate schedule (and gradient clipping) of a recipe, as the table writes it."""
    kind, args = scheduler["class_path"].rsplit(".", 1)[1], scheduler["init_args"]
    if kind == "ReduceLROnPlateau":
        cell = f"×{args['factor']:g} after {args['patience']} on plateau"
    else:
        assert (kind, interval, args["anneal_strategy"]) == ("OneCycleLR", "step", "cos")
        cell = f"one cycle: {args['pct_start']:.0%} warm-up, cosine decay (per step)"
    return cell + (f"; clip {clip:g}" if clip else "")


def docs_rows(cells: int = 12) -> dict[str, list[str]]:
    """docs/training.md's table rows of ``cells`` cells whose first cell is code, by it (12:
    the recipe table)."""
    lines = (REPO / "docs" / "training.md").read_text().splitlines()
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in lines if line.startswith("| `")]
    return {row[0]: row for row in rows if len(row) == cells}


@pytest.mark.parametrize("name", sorted([*RECIPES, *PER_TEST_SET]))
def test_docs_training_table_shows_what_print_config_prints(name):
    row = docs_rows().get(f"`{name}`")
    assert row is not None, f"docs/training.md: no row for {name}"
    assert row == recipe_row(name, printed(*config_args(name)))


# ----------------------------------------------------------------------------- planning

H200_STR_STEP_S = (0.033, 0.036)  # STR at paper widths, batch 32, torch 2.11 (docs/training.md)
CPU_STEP_S = {"STR": 1.93, "TCMR-like": 1.53, "VIBE-like": 0.76}  # docs/benchmarks.md
PLANNED = sorted([*PER_TEST_SET, "experiment/paper_str_3dpw.yaml", "experiment/paper_str_no3dpw.yaml",
                  "experiment/paper_tcmr_3dpw.yaml", "experiment/paper_tcmr_no3dpw.yaml",
                  "experiment/paper_vibe_no3dpw.yaml", "ablations/paper.yaml"])


def gpu_time_row(name: str, config: dict) -> list[str]:
    """docs/training.md's estimate of a recipe's GPU time: its steps at STR's H200 step time,
    scaled for the other models by their CPU step times."""
    model = ENCODER_NAMES[config["model"]["init_args"]["encoder"]["class_path"].rsplit(".", 1)[1]]
    steps = config["trainer"]["max_epochs"] * config["data"]["steps_per_epoch"]
    scale = CPU_STEP_S[model] / CPU_STEP_S["STR"]
    low, high = (steps * seconds * scale / 60 for seconds in H200_STR_STEP_S)
    extra = " + the discriminator's steps" if model == "VIBE-like" else ""
    return [f"`{name}`", model, f"{steps:,}", f"{low:.1f}–{high:.1f} min{extra}"]


@pytest.mark.parametrize("name", PLANNED)
def test_docs_gpu_time_table_follows_from_the_recipe_and_the_measured_step(name):
    row = docs_rows(cells=4).get(f"`{name}`")
    assert row == gpu_time_row(name, printed(*config_args(name)))


# The synthetic benchmark's seed spreads (docs/results.md, 3 seeds: sample SDs on test)
SYNTHETIC_SD = {("STR", "pa_mpjpe"): 2.8, ("TCMR-like", "pa_mpjpe"): 1.9,
                ("STR", "accel"): 4.8, ("TCMR-like", "accel"): 2.2}


def paper_comparisons() -> list[tuple[str, str, float, float, float]]:
    """(comparison, metric, paper difference, SD of each side) of the claims a reproduction
    tests: STR - TCMR in Table 1, each ablation - full STR in Table 2."""
    rows = []
    for setting in ("w/ 3DPW", "w/o 3DPW"):
        for dataset in ("3dpw", "mpii3d", "h36m"):
            for metric in ("pa_mpjpe", "accel"):
                difference = (STR_TABLE1[f"STR {setting}"][dataset][metric]
                              - STR_TABLE1[f"TCMR {setting}"][dataset][metric])
                rows.append((f"STR − TCMR, {setting}, {dataset}", metric, difference,
                             SYNTHETIC_SD["STR", metric], SYNTHETIC_SD["TCMR-like", metric]))
    full = STR_TABLE2["0_str_full"]
    for row, figures in list(STR_TABLE2.items())[1:]:
        for metric in ("pa_mpjpe", "accel"):
            rows.append((f"{row} − 0_str_full (Table 2)", metric, figures[metric] - full[metric],
                         SYNTHETIC_SD["STR", metric], SYNTHETIC_SD["STR", metric]))
    return rows


def seeds_row(comparison: str, metric: str, difference: float, sd_a: float, sd_b: float
              ) -> list[str]:
    seeds = (f"{welch_seeds_needed(sd_a, sd_b, abs(round(difference, 1))):,}"
             if round(difference, 1) else "no difference to detect")
    return [comparison, METRIC_LABELS[metric], f"{difference:+.1f}", seeds]


def test_docs_seed_table_follows_from_the_synthetic_spreads_and_the_papers_differences():
    text = (REPO / "docs" / "training.md").read_text().split("| comparison |", 1)[1]
    documented = [[c.strip() for c in line.strip("|").split("|")]
                  for line in text.split("\n\n", 1)[0].splitlines()[2:]]
    assert documented == [seeds_row(*row) for row in paper_comparisons()]


def target_row(name: str, config: dict) -> list[str]:
    """The paper's Table-1 figures a recipe aims at, per test set it reports."""
    model = ENCODER_NAMES[config["model"]["init_args"]["encoder"]["class_path"].rsplit(".", 1)[1]]
    trains_on_3dpw = any("3dpw" in d["path"] for d in config["data"]["train_datasets"])
    row = f"{model.removesuffix('-like')} {'w/' if trains_on_3dpw else 'w/o'} 3DPW"
    cells = []
    for dataset in config["data"]["test_datasets"]:
        figures = STR_TABLE1[row][dataset]
        cells.append(f"{dataset}: " + " / ".join(f"{figures[m]:.1f}" if m in figures else "–"
                                                 for m in ("mpjpe", "pa_mpjpe", "mpvpe", "accel")))
    return [f"`{name}`", f"Table 1, {row}", "; ".join(cells)]


@pytest.mark.parametrize("name", sorted(n for n in PLANNED if not n.startswith("ablations/")))
def test_docs_targets_are_the_papers_table_1(name):
    assert docs_rows(cells=3).get(f"`{name}`") == target_row(name, printed(*config_args(name)))


# ----------------------------------------------------------------------------- guards


def test_paper_recipe_without_smpl_and_spin_stops_naming_both_keys():
    with pytest.raises(ValueError, match="model.init_args.body_model") as error:
        run_cli_in_process("fit", "--config", str(CONFIGS / "experiment/paper_str_3dpw.yaml"))
    assert "model.init_args.spin_checkpoint" in str(error.value)
    with pytest.raises(ValueError, match="requires values") as error:
        run_cli_in_process("fit", *config_args("ablations/paper.yaml + ablations/rows/2_no_ste.yaml"),
                "--model.init_args.body_model", "data/body")
    assert "spin_checkpoint" in str(error.value) and "body_model" not in str(error.value)


def test_mannequin_on_data_that_is_not_the_synthetic_benchmark_is_refused(tiny_shards, tmp_path):
    config = tiny_config(tiny_shards, tmp_path, max_steps=1)
    del config["model"]["init_args"]["allow_mannequin_on_real_data"]
    path = write_config(config, tmp_path / "c.yaml")
    for stage in (["fit"], ["test", "--ckpt_path", "none"]):
        with pytest.raises(ValueError, match="not the synthetic benchmark") as error:
            run_cli_in_process(*stage, "--config", str(path))
        assert str(tiny_shards / "val") in str(error.value)
        assert "allow_mannequin_on_real_data true" in str(error.value)
    allowed = run_cli_in_process("fit", "--config", str(path),
                      "--model.init_args.allow_mannequin_on_real_data", "true")
    assert allowed.trainer.global_step == 1


def test_synthetic_benchmark_is_recognised_by_its_card_and_manifest(small_synthetic_benchmark, tmp_path):
    assert all(is_synthetic_benchmark(small_synthetic_benchmark / split)
               for split in ("train", "train-2d", "val", "test", "test-dark", "motion"))
    impostor = tmp_path / "copy"  # the same shards without the benchmark's card
    impostor.mkdir()
    (impostor / "val").symlink_to(small_synthetic_benchmark / "val")
    assert not is_synthetic_benchmark(impostor / "val")


def test_synthetic_recipe_trains_on_a_moved_data_root(small_synthetic_benchmark, tmp_path):
    cli = run_cli_in_process("fit", "--config", str(CONFIGS / "experiment/synthetic_str.yaml"),
                  "--data.root", str(small_synthetic_benchmark), "--run.root", str(tmp_path),
                  "--trainer.max_steps", "2",
                  "--trainer.enable_progress_bar", "false", "--data.num_workers", "0")
    assert cli.trainer.global_step == 2
    assert cli.datamodule.val_datasets == {"synthetic": str(small_synthetic_benchmark / "val")}
    assert synthetic_root(CONFIGS / "experiment/synthetic_str.yaml") == Path("data/synthetic")


def test_root_joins_relative_split_paths_only(tmp_path):
    data = ShardDataModule(train_datasets=[{"path": "a/train"}, {"path": "/abs/train"}],
                           val_datasets={"v": "a/val"}, motion_dataset="m", root=str(tmp_path))
    assert [d.path for d in data.train_datasets] == [str(tmp_path / "a/train"), "/abs/train"]
    assert data.val_datasets == {"v": str(tmp_path / "a/val")}
    assert data.motion_dataset == str(tmp_path / "m")


def test_windows_weights_are_each_splits_window_count(tiny_shards):
    train, train2d = tiny_shards / "train", tiny_shards / "train2d"
    data = ShardDataModule(
        train_datasets=[{"path": str(train), "weight": "windows", "group": "3d"},
                        {"path": str(train2d), "weight": "windows", "group": "2d"}],
        seq_len=8, stride=3, batch_size=4, num_workers=0)
    stream = data.train_loader_for(0, 1).dataset
    # clips of 40, 33, 50, 20 frames and 30, 25 frames: (L - 8) // 3 + 1 windows each
    assert [d.weight for d in stream.datasets] == [11 + 9 + 15 + 5, 8 + 6]
    assert window_count(read_manifest(train), 8, 3) == 40
    assert window_count(read_manifest(train), 41, 1) == 10  # shorter clips have none


def test_windows_and_numbers_cannot_mix_within_a_group(tiny_shards):
    with pytest.raises(ValueError, match="all numbers or all 'windows'"):
        ShardDataModule(train_datasets=[
            {"path": str(tiny_shards / "train"), "weight": "windows", "group": "3d"},
            {"path": str(tiny_shards / "train2d"), "weight": 2.0, "group": "3d"}])
    with pytest.raises(ValueError, match="weight > 0 or 'windows'"):
        ShardDataModule(train_datasets=[{"path": "x", "weight": "frames", "group": "3d"}])


if __name__ == "__main__":
    sys.exit(write_expected_files())
