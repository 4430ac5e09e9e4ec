"""Checkpoint = one HDF5 file: spec, weights, optimizer state, encoders, history; no pickle.

Layout (format_version 1); every name is a hard link, every dataset contiguous and unfiltered:

    /                           attrs format="nncli-checkpoint", format_version=1 (int),
                                nncli_version, created (ISO 8601, UTC), sha256 (below)
    /spec                       scalar string dataset: the resolved spec as YAML
    /model/<i>.<type>           one group per layer, i = 0..n-1; attrs index (int), type,
                                config (the layer's config as JSON text)
    /model/<i>.<type>/<param>   numeric dataset, e.g. /model/0.dense/weight (out, in)
    /model/<i>.<type>/state/<name>
                                only for layers with non-trainable state: numeric dataset,
                                e.g. /model/1.batchnorm/state/running_var (C,); files
                                without it load as layers without state
    /optimizer                  only when saved; attrs type, step (int)
    /optimizer/<i>.<type>/<param>/<slot>
                                numeric dataset: slot "m" of parameter "0.dense.weight" is
                                /optimizer/0.dense/weight/m
    /data/...                   a nested dict: dict -> group, any other value -> one dataset
                                with attr kind (below)
    /training                   attrs: its scalar entries (None: an empty float attr); each
                                dict entry -> a group written like /data; "history" values as
                                float64 arrays: /training/history/<metric> (epochs,)

Data leaf kinds: array (numeric dataset, dtype and shape kept), str (scalar string),
strs (1-D strings), int / float / bool (0-d int64 / float64 / bool), ints / floats (1-D
int64 / float64), none (null dataspace). A dict key is the link name with "%" -> "%25" and
"/" -> "%2F"; the key "." is "%2E" and the key "" is "%".

All text, in datasets and attributes, is fixed-length UTF-8 (NUL-padded, so it may not hold
NUL): variable-length strings live on a heap whose corruption crashes HDF5 itself, so nncli
neither writes nor reads them. Attributes are numbers or such text, nothing else.

Checksums (sha256, hex): each dataset's attr sha256 digests its dtype, shape and little-endian
C-order bytes (numbers) or its shape and the JSON of its strings (text); the root's sha256
digests the sorted JSON lines [path] and [path, attr, value] of every object and attribute
but itself, so a changed name, key or config is caught too. Load checks them all.

Load trusts nothing: it checks the signature and format attrs, then walks every link and
refuses soft, external, virtual, chunked, filtered and externally stored data, and datasets
declaring more bytes than the file holds or than they store, before reading any data; numbers
must be numeric, only the text places may hold text. Save writes a temporary file in the same
folder, fsyncs it and renames it over the old one, so readers see the old or the new file.
"""

from nncli.checkpoint.format import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    LayerMeta,
    LayerRecord,
    OptimizerRecord,
)
from nncli.checkpoint.reader import load
from nncli.checkpoint.writer import save

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "LayerMeta",
    "LayerRecord",
    "OptimizerRecord",
    "load",
    "save",
]
