"""Real scikit-learn models behind the reference backend, stored as joblib artifacts.

Layout: ``<home>/models/<model_name>/<model_version>/{model.joblib,meta.json}`` where
``model_name``/``model_version`` come from the Model's ``modelBackendParams`` (``model_name``
defaults to the Model's ``metaData.name``). Two pipeline kinds, chosen from the Model's schema:

* ``embedder``: one string input, one list<double> output -> HashingVectorizer(char n-grams) +
  TruncatedSVD to a fixed dimension, L2-normalised.
* ``scorer``: numeric inputs, one double output -> log1p + StandardScaler + LogisticRegression;
  the output is ``predict_proba[:, 1]``.

Both are fit on deterministic synthetic data (seeded by model name and version), so the demo
artifacts are reproducible byte-for-byte in behaviour.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from chronon_reference_backend import schema

EMBEDDER = "embedder"
SCORER = "scorer"
EMBEDDING_DIM = 8
ARTIFACT = "model.joblib"
META = "meta.json"


def _log1p_nonnegative(x: np.ndarray) -> np.ndarray:
    """Module-level (not a lambda) so joblib can pickle the pipeline by reference."""
    return np.log1p(np.clip(np.asarray(x, dtype=float), 0.0, None))


def model_coordinates(model: dict[str, Any]) -> tuple[str, str]:
    """``(model_name, model_version)`` from modelBackendParams; raises ValueError with what is missing."""
    name = (model.get("metaData") or {}).get("name")
    params = (model.get("inferenceSpec") or {}).get("modelBackendParams") or {}
    model_name = params.get("model_name") or name
    version = params.get("model_version")
    if not model_name:
        raise ValueError("model has neither modelBackendParams.model_name nor metaData.name")
    if not version:
        raise ValueError(f"model {model_name!r} has no modelBackendParams.model_version; the reference backend "
                         "stores artifacts per version")
    for part in (model_name, str(version)):
        # These become folder names under <home>/models: keep them from escaping it.
        if not part.replace("_", "").replace("-", "").replace(".", "").isalnum() or part in (".", ".."):
            raise ValueError(f"model name/version {part!r} may contain only letters, digits, '_', '-' and '.'")
    return model_name, str(version)


def kind_for_model(model: dict[str, Any]) -> str:
    """Pick the pipeline kind from the Model's input/output schema, or explain why none fits."""
    name = (model.get("metaData") or {}).get("name", "?")
    inputs = schema.fields(model.get("inputSchema"), f"model {name} inputSchema")
    outputs = schema.fields(model.get("outputSchema"), f"model {name} outputSchema")
    if len(outputs) != 1:
        raise ValueError(f"model {name}: the reference backend serves models with exactly one output field, "
                         f"got {[n for n, _ in outputs]}")
    out_type = outputs[0][1]
    in_kinds = [t.get("kind") for _, t in inputs]
    if len(inputs) == 1 and in_kinds[0] == schema.STRING and out_type.get("kind") == schema.LIST:
        elem = ((out_type.get("params") or [{}])[0].get("dataType") or {}).get("kind")
        if elem in schema.FLOATING_KINDS:
            return EMBEDDER
    if all(k in schema.NUMERIC_KINDS for k in in_kinds) and out_type.get("kind") in schema.FLOATING_KINDS:
        return SCORER
    raise ValueError(f"model {name}: no reference pipeline for inputs {[(n, t.get('kind')) for n, t in inputs]} -> "
                     f"output {outputs[0][0]} kind {out_type.get('kind')}; supported: one string -> list<double> "
                     "(embedder) or numeric inputs -> double (scorer)")


def artifact_dir(home: Path, model_name: str, version: str) -> Path:
    return Path(home) / "models" / model_name / version


def _seed(model_name: str, version: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{model_name}:{version}".encode()).digest()[:4], "big")


def _fit_embedder(seed: int):
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    rng = np.random.default_rng(seed)
    vocab = ["red", "blue", "running", "shoes", "laptop", "phone", "case", "coffee", "grinder", "merchant",
             "store", "cheap", "best", "wireless", "headphones", "kids", "toy", "garden", "hose", "book",
             "m_001", "m_002", "acme", "corp", "market", "online", "travel", "hotel", "pizza", "fuel"]
    corpus = [" ".join(rng.choice(vocab, size=rng.integers(1, 5))) for _ in range(400)]
    pipeline = make_pipeline(
        HashingVectorizer(n_features=2 ** 12, analyzer="char_wb", ngram_range=(2, 4), alternate_sign=False),
        TruncatedSVD(n_components=EMBEDDING_DIM, random_state=seed % (2 ** 31)),
        Normalizer(),
    )
    pipeline.fit(corpus)
    return pipeline


def _fit_scorer(seed: int, n_features: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(seed)
    # Wide log-normal features (counts to cents) and positive weights: larger activity, higher score.
    x = rng.lognormal(mean=5.0, sigma=2.5, size=(2000, n_features))
    weights = rng.uniform(0.3, 1.0, size=n_features) / n_features
    logits = (_log1p_nonnegative(x) - 5.0) @ weights + rng.normal(scale=1.0, size=2000)
    y = (logits > 0).astype(int)
    if y.min() == y.max():  # degenerate draw: force both classes so LogisticRegression can fit
        y[: len(y) // 2] = 1 - y[0]
    pipeline = make_pipeline(FunctionTransformer(_log1p_nonnegative), StandardScaler(),
                             LogisticRegression(random_state=0))
    pipeline.fit(x, y)
    return pipeline


def create_artifact(home: Path, model: dict[str, Any], overwrite: bool = False) -> Path:
    """Fit and save the demo pipeline for ``model``; a no-op when the artifact already exists."""
    model_name, version = model_coordinates(model)
    kind = kind_for_model(model)
    target = artifact_dir(home, model_name, version)
    if (target / META).exists() and not overwrite:
        return target
    inputs = [n for n, _ in schema.fields(model.get("inputSchema"), "inputSchema")]
    seed = _seed(model_name, version)
    pipeline = _fit_embedder(seed) if kind == EMBEDDER else _fit_scorer(seed, len(inputs))
    target.mkdir(parents=True, exist_ok=True)
    # Write into temp names and rename, so a concurrent loader never sees half an artifact.
    tmp = target / f".{ARTIFACT}.{os.getpid()}"
    joblib.dump(pipeline, tmp)
    os.replace(tmp, target / ARTIFACT)
    meta = {"kind": kind, "model_name": model_name, "model_version": version, "n_inputs": len(inputs),
            "input_fields": inputs, "dimension": EMBEDDING_DIM if kind == EMBEDDER else None}
    tmp_meta = target / f".{META}.{os.getpid()}"
    tmp_meta.write_text(json.dumps(meta, indent=2))
    os.replace(tmp_meta, target / META)
    return target


@dataclass
class LoadedModel:
    kind: str
    meta: dict[str, Any]
    pipeline: Any

    def predict(self, columns: list[list[Any]]) -> list[Any]:
        """``columns``: one list of values per model input field, in inputSchema order. Returns one
        value per row: a list[float] for an embedder, a float for a scorer."""
        if len(columns) != self.meta["n_inputs"]:
            raise ValueError(f"model {self.meta['model_name']} v{self.meta['model_version']} takes "
                             f"{self.meta['n_inputs']} inputs, got {len(columns)}")
        if self.kind == EMBEDDER:
            texts = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in columns[0]]
            if not texts:
                return []
            return [row.tolist() for row in self.pipeline.transform(texts)]
        if not columns[0]:
            return []
        # Missing numeric features count as 0 (the log1p of "no activity"), rather than failing a row.
        x = np.array([[0.0 if v is None else float(v) for v in col] for col in columns], dtype=float).T
        x = np.nan_to_num(x, nan=0.0)
        return self.pipeline.predict_proba(x)[:, 1].tolist()


_cache: dict[Path, tuple[float, LoadedModel]] = {}
_cache_lock = threading.Lock()


def load(home: Path, model: dict[str, Any]) -> LoadedModel:
    """Load (cached by artifact mtime) the artifact for ``model``; FileNotFoundError names the path."""
    model_name, version = model_coordinates(model)
    target = artifact_dir(home, model_name, version)
    artifact, meta_path = target / ARTIFACT, target / META
    if not artifact.exists() or not meta_path.exists():
        raise FileNotFoundError(f"unknown model {model_name!r} version {version}: no artifact at {target} "
                                "(create demo artifacts with `chronon-airflow backend init-models`)")
    mtime = artifact.stat().st_mtime
    with _cache_lock:
        hit = _cache.get(artifact)
        if hit and hit[0] == mtime:
            return hit[1]
    meta = json.loads(meta_path.read_text())
    loaded = LoadedModel(kind=meta["kind"], meta=meta, pipeline=joblib.load(artifact))
    with _cache_lock:
        _cache[artifact] = (mtime, loaded)
    return loaded


def check_compatible(model: dict[str, Any], loaded: LoadedModel) -> None:
    """The registered Model's schema must match what the artifact computes."""
    kind = kind_for_model(model)
    n_inputs = len(schema.fields(model.get("inputSchema"), "inputSchema"))
    if kind != loaded.kind:
        raise ValueError(f"artifact {loaded.meta['model_name']} v{loaded.meta['model_version']} is a {loaded.kind}, "
                         f"but the Model's schema describes a {kind}")
    if n_inputs != loaded.meta["n_inputs"]:
        raise ValueError(f"artifact {loaded.meta['model_name']} v{loaded.meta['model_version']} takes "
                         f"{loaded.meta['n_inputs']} inputs, the Model's inputSchema has {n_inputs}")


def reference_models_in_repo(repo: Path, backend: str = "reference") -> list[dict[str, Any]]:
    """Every Model (a dict with ``inferenceSpec``) on ``backend`` anywhere in ``<repo>/production``."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            spec = node.get("inferenceSpec")
            if isinstance(spec, dict) and spec.get("modelBackend") == backend and "metaData" in node:
                try:
                    found.setdefault("/".join(model_coordinates(node)), node)
                except ValueError:
                    pass  # registration reports the problem; artifact creation just skips it
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    production = Path(repo) / "production"
    if production.is_dir():
        for path in sorted(production.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                try:
                    walk(json.loads(path.read_text()))
                except (ValueError, UnicodeDecodeError):
                    continue  # not a compiled config
    return list(found.values())
