"""Composing config files: ``base:``, sub-config files, merging, interpolation, ``???``."""

from __future__ import annotations

import pytest

from str_lightning.runs.config_files import (
    ConfigFileError,
    compose_file,
    load_config_text,
    required_keys,
)


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_merges_mappings_and_replaces_lists_and_scalars(tmp_path):
    write(tmp_path / "base.yaml", "a: {x: 1, y: [1, 2], z: {k: 1}}\nb: 2\n")
    child = write(tmp_path / "sub" / "child.yaml",
                  "base: ../base.yaml\na: {y: [3], z: {j: 2}}\nc: 3\n")
    assert compose_file(child) == {"a": {"x": 1, "y": [3], "z": {"k": 1, "j": 2}}, "b": 2, "c": 3}


def test_bases_merge_in_order_and_paths_are_relative_to_their_file(tmp_path):
    write(tmp_path / "frag" / "one.yaml", "k: 1\nv: one\nfile: two.yaml\n")
    write(tmp_path / "frag" / "two.yaml", "deep: 2\n")
    write(tmp_path / "frag" / "three.yaml", "v: three\n")
    child = write(tmp_path / "exp" / "child.yaml",
                  "section:\n  base: [../frag/one.yaml, ../frag/three.yaml]\n  own: 4\n")
    assert compose_file(child) == {"section": {"k": 1, "v": "three", "file": {"deep": 2},
                                               "own": 4}}


def test_a_complete_definition_or_another_class_replaces_instead_of_merging(tmp_path):
    write(tmp_path / "data_a.yaml", "paths: {a: 1, b: 2}\n")
    write(tmp_path / "data_b.yaml", "paths: {c: 3}\n")
    write(tmp_path / "base.yaml", "data: data_a.yaml\n"
          "model: {class_path: A, init_args: {only_a: 1, shared: 1}}\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\ndata: data_b.yaml\n"
                  "model: {class_path: B, init_args: {shared: 2}}\n")
    assert compose_file(child) == {"data": {"paths": {"c": 3}},
                                   "model": {"class_path": "B", "init_args": {"shared": 2}}}
    same_class = write(tmp_path / "same.yaml", "base: base.yaml\nmodel: {init_args: {shared: 3}}\n")
    assert compose_file(same_class)["model"] == {"class_path": "A",
                                                 "init_args": {"only_a": 1, "shared": 3}}


def test_interpolation_is_resolved_on_the_composed_document(tmp_path):
    write(tmp_path / "callbacks.yaml", "callbacks: [{monitor: '${model.monitor}'}]\n")
    child = write(tmp_path / "child.yaml",
                  "trainer: {base: callbacks.yaml}\nmodel: {monitor: val/x}\n")
    assert compose_file(child)["trainer"] == {"callbacks": [{"monitor": "val/x"}]}


def test_required_values_survive_and_are_found():
    config = load_config_text("model:\n  init_args:\n    body_model: ???\n    spin: ???\n"
                              "    ok: 1\nlist: [1, '???']\n")
    assert config["model"]["init_args"]["body_model"] == "???"
    assert required_keys(config) == ["model.init_args.body_model", "model.init_args.spin",
                                     "list.1"]


def test_missing_base_and_loops_are_clear_errors(tmp_path):
    child = write(tmp_path / "child.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigFileError, match=r"nowhere.yaml \(named in .*child.yaml\) does not"):
        compose_file(child)
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    loop = write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigFileError, match="include each other"):
        compose_file(loop)
    bad = write(tmp_path / "bad.yaml", "base: 3\n")
    with pytest.raises(ConfigFileError, match="base: expected a file path"):
        compose_file(bad)
