#!/usr/bin/env python3
"""Offline: quantises Whisper tiny.en's fp16 model.bin to int8 with CTranslate2's own converter code and writes
what Mass's int8 writer (`mass compress --int8` of a Whisper folder) must reproduce: every variable of the
model.bin CTranslate2 writes, with its dtype, shape and the SHA-256 of its bytes. Run with the peer venv (it has
ctranslate2 4.x, installed by faster-whisper):

    ~/.cache/mass-peers/bin/python scripts/make-ct2-int8-golden.py models/whisper-tiny.en/1/model.bin OUT_DIR \
        > Tests/MassModelsTests/Goldens/whisper-int8-ct2.json

The spec is filled from the fp16 file (aliases become copies, which CTranslate2's optimize() aliases again, as its
converters do), then `optimize("int8")` quantises every weight that has a `_scale` slot (linear, conv1d and
embedding weights: per row, scale = 127 / max|w|, rint) and `_serialize` writes model.bin. Not used by any test.
"""

import hashlib
import json
import os
import re
import struct
import sys

import numpy as np
from ctranslate2.specs import WhisperSpec
from ctranslate2.specs.model_spec import index_spec, _parent_scope

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_model(path):
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values

    def string():
        nonlocal pos
        (length,) = take("H")
        text = data[pos : pos + length - 1].decode()
        pos += length
        return text

    (version,) = take("I")
    assert version == 6, version
    name = string()
    (revision,) = take("I")
    (count,) = take("I")
    variables = {}
    for _ in range(count):
        var = string()
        (rank,) = take("B")
        shape = take("I" * rank)
        (dtype,) = take("B")
        (nbytes,) = take("I")
        array = np.frombuffer(data, dtype=DTYPES[dtype], count=nbytes // np.dtype(DTYPES[dtype]).itemsize, offset=pos)
        pos += nbytes
        variables[var] = array.reshape(shape) if rank else array.reshape(())[()]
    (count,) = take("I")
    aliases = {}
    for _ in range(count):
        alias = string()
        aliases[alias] = string()
    return name, revision, variables, aliases


def main():
    source, out = sys.argv[1], sys.argv[2]
    name, revision, variables, aliases = read_model(source)
    layers = lambda prefix: len({k.split("/")[1] for k in variables if re.match(prefix + r"/layer_\d+/", k)})
    spec = WhisperSpec(
        layers("encoder"), int(variables["encoder/num_heads"]), layers("decoder"), int(variables["decoder/num_heads"])
    )
    assert (spec.name, spec.revision) == (name, revision), (spec.name, spec.revision, name, revision)
    for var, value in list(variables.items()) + [(a, variables[t]) for a, t in aliases.items()]:
        scope, attr = _parent_scope(var)
        layer = index_spec(spec, scope)
        setattr(layer, attr, np.array(value).copy() if isinstance(value, np.ndarray) else value)
    vocabulary = os.path.join(os.path.dirname(source), "vocabulary.txt")
    spec.register_vocabulary(open(vocabulary, encoding="utf-8").read().split("\n")[:-1])
    spec.validate()
    spec.optimize("int8")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "model.bin")
    spec._serialize(path)
    import ctranslate2

    _, _, quantised, quantised_aliases = read_model(path)
    facts = {
        "ctranslate2": ctranslate2.__version__,
        "source_sha256": hashlib.sha256(open(source, "rb").read()).hexdigest(),
        "aliases": quantised_aliases,
        "variables": {
            k: {
                "dtype": str(np.asarray(v).dtype),
                "shape": list(np.shape(v)),
                "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest(),
            }
            for k, v in sorted(quantised.items())
        },
    }
    print(json.dumps(facts, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
