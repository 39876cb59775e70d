"""The cluster templates in configs/cluster/ cannot be launched here: check that they parse,
pass Ray's own cluster-config schema, and hold the fields memrl relies on."""

from __future__ import annotations

import copy
import re
import shlex
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from rollout.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "configs" / "cluster"


def _pins() -> tuple[str, str]:
    """(Ray major.minor, Python major.minor) that pyproject.toml pins."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (ray_dep,) = [d for d in project["dependencies"] if d.startswith("ray[")]
    ray_version = re.search(r">=(\d+\.\d+)", ray_dep).group(1)
    python = re.search(r">=(\d+\.\d+)", project["requires-python"]).group(1)
    return ray_version, python


def _image_tag_matches_pins(image: str) -> None:
    ray_version, python = _pins()
    assert image.startswith(f"rayproject/ray:{ray_version}."), image
    assert f"-py{python.replace('.', '')}" in image, image


def _train_args(command: str) -> list[str]:
    """The `memrl train` arguments of an entrypoint, after `python -m rollout.cli train`."""
    words = shlex.split(command)
    at = words.index("rollout.cli")
    assert words[at - 2 : at + 2] == ["python", "-m", "rollout.cli", "train"], command
    return words[at + 2 :]


def test_launcher_yaml_passes_rays_schema_and_runs_memrl():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    validate_config(prepare_config(copy.deepcopy(config)))
    bad = copy.deepcopy(config)
    bad["available_node_types"]["cpu_worker"]["min_wokers"] = 1  # the schema does catch typos
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(bad))

    assert config["provider"]["type"] == "aws"
    _image_tag_matches_pins(config["docker"]["image"])
    # the driver's node: a GPU for the learner (learner.device auto -> cuda, `--gpus 1`)
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"]["GPU"] >= 1
    workers = [t for name, t in config["available_node_types"].items() if name != "cpu_worker"]
    assert workers == [head]
    cpu = config["available_node_types"]["cpu_worker"]
    assert cpu["resources"]["CPU"] >= 1 and cpu["max_workers"] >= cpu["min_workers"] >= 1
    # the checkout is synced to every node and installed there
    (target,) = [k for k, v in config["file_mounts"].items() if v == "."]
    assert any("pip install" in c and target in c for c in config["setup_commands"])
    assert {".venv", "runs"} <= set(config["rsync_exclude"])
    # the head's dashboard/job server stays on loopback (reached through `ray dashboard`)
    start = " ".join(config["head_start_ray_commands"])
    assert "--head" in start and "--dashboard-host=127.0.0.1" in start
    assert "0.0.0.0" not in start
    assert any("$RAY_HEAD_IP:6379" in c for c in config["worker_start_ray_commands"])


def test_launcher_yaml_usage_names_configs_that_load():
    text = (CLUSTER / "aws.yaml").read_text()
    usage = " ".join(line.lstrip("# ").rstrip("\\") for line in text.splitlines()[:12])
    submit = usage[usage.index("memrl submit") :].split("ray rsync-down")[0].split()
    config, *rest = submit[2:]
    overrides = [w for w in rest if "=" in w and not w.startswith("-")]
    assert load_config(ROOT / config, overrides).rollout.placement == "SPREAD"
    assert "--address" in rest and "--gpus" in rest


def test_rayjob_manifest_runs_a_memrl_config_on_a_gpu_head():
    job = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    ray_version, python = _pins()
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"].startswith(f"{ray_version}.")

    args = _train_args(spec["entrypoint"])
    assert args[-2:] == ["--address", "auto"]
    config, overrides = args[0], args[1:-2]
    cfg = load_config(ROOT / config, overrides)  # the config and overrides are valid
    assert cfg.rollout.num_workers >= 1

    head = cluster["headGroupSpec"]["template"]["spec"]
    (head_container,) = head["containers"]
    assert int(head_container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert spec["entrypointNumGpus"] >= 1  # the driver, with the learner, on the GPU head
    # run directories land on the head's persistent volume
    (mount,) = head_container["volumeMounts"]
    assert cfg.run.dir == mount["mountPath"]
    (volume,) = [v for v in head["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"]

    images = {head_container["image"]}
    for group in cluster["workerGroupSpecs"]:
        (container,) = group["template"]["spec"]["containers"]
        images.add(container["image"])
        assert int(container["resources"]["limits"]["cpu"]) >= 1
        assert group["maxReplicas"] >= group["replicas"] >= group["minReplicas"] >= 1
    assert len(images) == 1  # the same memrl image on every pod

    # that image is the Dockerfile's: Ray's image for the pins, with the checkout installed
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    _image_tag_matches_pins(base)
    assert re.search(r"^RUN pip install .*-e /home/ray/memrl$", dockerfile, re.M)
    assert re.search(r"^WORKDIR /home/ray/memrl$", dockerfile, re.M)
    assert (ROOT / config).is_file()  # read relative to that WORKDIR
