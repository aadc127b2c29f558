"""What makes two runs "the same run": the run id, and how a run deviates from its paper protocol."""
from __future__ import annotations

import hashlib
import json
from typing import Any

# Keys that change where or how a run is stored or shown, never its result.
VOLATILE_KEYS = (
    "results_dir", "work_dir", "data_root", "force", "logger", "planned", "protocol.free",
    "dataset.root", "dataset.source", "dataset.download", "dataset.workers", "trainer.device", "trainer.threads", "trainer.progress",
    "trainer.divergence_check_every", "trainer.keep_checkpoint",
)

# Options added after runs were recorded and part of no paper's protocol, with their "off" value:
# left out of the hash while off (adding one never renames the runs that predate it); on, each is a
# deviation from the protocol (``protocol_deviations``).
LATER_OPTIONS: dict[str, Any] = {"trainer.early_stop": None, "trainer.time_budget_s": None, "trainer.channels_last": False,
                                  "trainer.compile": False}


def get_dotted(config: dict[str, Any], key: str, default: Any = None) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _without(config: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    config = json.loads(json.dumps(config))
    for key in keys:
        *parents, leaf = key.split(".")
        node = get_dotted(config, ".".join(parents)) if parents else config
        if isinstance(node, dict):
            node.pop(leaf, None)
    return config


def config_hash(config: dict[str, Any], data_tag: str) -> str:
    """SHA-256 of the result-relevant config plus the data provenance tag."""
    off = tuple(key for key, value in LATER_OPTIONS.items() if get_dotted(config, key, value) == value)
    payload = {"config": _without(config, VOLATILE_KEYS + off), "data": data_tag}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cell_hash(config: dict[str, Any], data_tag: str) -> str:
    """Like ``config_hash`` but blind to the seed: runs that differ only in seed share a table cell."""
    return config_hash(_without(config, ("seed",)), data_tag)


def run_id(config: dict[str, Any], digest: str) -> str:
    """Readable, unique id: ``<experiment>-<optim>-seed<seed>-<hash12>``."""
    return f"{config['experiment']}-{config['optim']['name']}-seed{config['seed']}-{digest[:12]}"


def protocol_deviations(config: dict[str, Any]) -> dict[str, list[Any]]:
    """Keys whose value differs from the protocol's reference values (``LATER_OPTIONS`` switched on
    included), keys whose value is none of the protocol's ``choices`` (a table's axis, e.g. the networks
    of RMSGD Table 1a: ``{key: [value, ...]}``), and optimizer hyper-parameters that differ from the
    optimizer's paper values (``bench.plan``): ``{key: [reference, actual]}`` (``[{one_of: [...]}, actual]``
    for choices). Keys the protocol lists as ``free`` (values it sweeps or leaves to the hardware, e.g.
    RMSGD's time budget) are never deviations."""
    protocol = config.get("protocol") or {}
    free = set(protocol.get("free") or [])
    reference = {**LATER_OPTIONS, **(protocol.get("reference") or {})}
    deviations = {key: [expected, actual] for key, expected in reference.items()
                  if key not in free and (actual := get_dotted(config, key, LATER_OPTIONS.get(key))) != expected}
    deviations.update({key: [{"one_of": allowed}, actual] for key, allowed in (protocol.get("choices") or {}).items()
                       if (actual := get_dotted(config, key)) not in allowed})
    return {**deviations, **(config.get("planned") or {}).get("hparam_deviations", {})}


def protocol_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The protocol block of a run record; any deviation from the reference makes a run reduced."""
    protocol = config.get("protocol", {})
    deviations = protocol_deviations(config)
    return {
        "name": protocol.get("name"),
        "reduced": bool(protocol.get("reduced")) or bool(deviations),
        "deviations": deviations,
        "note": protocol.get("note"),
    }
