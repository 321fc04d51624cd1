"""Reading and writing PyTorch `.pth` files without torch: tensors come back as numpy arrays.

`torch.save` has written two layouts, and both are in use for the weights dip-jax reads:

- zip (PyTorch >= 1.6): an archive whose `<prefix>/data.pkl` pickles the object, with each
  tensor's storage referred to by a key and stored raw in `<prefix>/data/<key>`;
  `<prefix>/byteorder` says 'little' or 'big' (absent means little).
- legacy (before 1.6: the EfficientNet-Lite0 weights, the original DIP's AlexNet/VGG files):
  a stream of pickles (a magic number, a protocol version, system info, the object, the list
  of storage keys), then each storage in that order as an int64 element count and raw bytes.

The object is read by a restricted unpickler that rebuilds tensors (and parameters) as numpy
arrays, OrderedDicts and plain containers, and turns every other class it meets (the
`nn.Module`s of a pickled model) into a `PickledObject` holding only its class name and
pickled state. It never imports or calls anything the file names, so reading an untrusted
file runs none of its code. `state_dict` flattens a pickled model into the `name.weight`
naming of `Module.state_dict()`.

`save` writes either layout (the tests make with it the files torch would have written;
`benchmarks/check_classifier.py` checks that torch reads them).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Mapping

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
PICKLE_PROTOCOL = 2  # what torch.save uses

# torch's typed storages -> element dtype; bfloat16 comes from ml_dtypes (a JAX dependency).
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class PthError(ValueError):
    """A file that is not a readable PyTorch checkpoint."""


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


class PickledObject:
    """An instance of a class the unpickler does not rebuild: its class name and pickled state."""

    class_name = "object"
    # Class-level defaults: the unpickler makes most instances with __new__, skipping __init__.
    args: tuple = ()
    state: Any = None

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def attributes(self) -> dict:
        """The pickled `__dict__` (a torch.nn.Module's state is its `__dict__`), or {}."""
        if isinstance(self.state, dict):
            return self.state
        if isinstance(self.state, tuple) and self.state and isinstance(self.state[0], dict):
            return self.state[0]
        return {}

    def __repr__(self):
        return f"PickledObject({self.class_name})"


def _stub_class(module: str, name: str) -> type:
    return type(name, (PickledObject,), {"class_name": f"{module}.{name}"})


class _StorageType:
    def __init__(self, name: str):
        self.dtype = _dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage's elements; `data` is filled when its bytes are read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel, self.data = dtype, int(numel), None

    def elements(self) -> np.ndarray:
        if self.data is None:
            raise PthError("a tensor refers to a storage that the file does not contain")
        return self.data


class _StorageView:
    """Legacy files can store a storage as a window (offset, size) of another one."""

    def __init__(self, root: _Storage, offset: int, numel: int):
        self.root, self.offset, self.numel = root, int(offset), int(numel)

    def elements(self) -> np.ndarray:
        return self.root.elements()[self.offset : self.offset + self.numel]


class _LazyTensor:
    """A tensor whose storage may not have been read yet (legacy files store them last)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def to_numpy(self) -> np.ndarray:
        elements = self.storage.elements()
        if len(self.size) != len(self.stride) or any(s < 0 for s in self.stride):
            raise PthError(f"unsupported tensor layout: size {self.size}, stride {self.stride}")
        if 0 in self.size:
            return np.zeros(self.size, elements.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if self.offset < 0 or last >= elements.size:
            raise PthError(f"a tensor of size {self.size} reaches past its storage of {elements.size} elements")
        item = elements.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            elements[self.offset :], shape=self.size, strides=[s * item for s in self.stride], writeable=False
        )
        return np.array(view)  # a contiguous copy that owns its memory


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data  # requires_grad and hooks do not matter for reading weights


def _reconstructor(cls, base, state):
    """copyreg._reconstructor, as protocol-0/1 pickles of plain objects call it: only stubs."""
    del base, state
    return cls.__new__(cls) if isinstance(cls, type) and issubclass(cls, PickledObject) else PickledObject()


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, persistent_load):
        super().__init__(file, encoding="latin1")  # Python 2 pickles store str as bytes
        self._persistent_load = persistent_load

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return _stub_class(module, name)

    def persistent_load(self, pid):
        return self._persistent_load(pid)


def _storage_dtype(storage_type) -> np.dtype:
    if not isinstance(storage_type, _StorageType):
        raise PthError(f"unsupported storage type {storage_type!r}")
    return storage_type.dtype


def _materialize(obj, seen=None):
    """The unpickled object with every lazy tensor replaced by its numpy array."""
    seen = set() if seen is None else seen
    if isinstance(obj, _LazyTensor):
        return obj.to_numpy()
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialize(v, seen)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialize(v, seen) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, seen) for v in obj)
    if isinstance(obj, PickledObject) and id(obj) not in seen:  # objects may refer to each other
        seen.add(id(obj))
        obj.state = _materialize(obj.state, seen)
        obj.args = _materialize(obj.args, seen)
    return obj


def _load_zip(path: str):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pickles:
            raise PthError(f"{path} is a zip archive without a data.pkl: not a PyTorch checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode().strip()
        storages = {}

        def persistent_load(pid):
            kind, storage_type, key, _location, numel = pid[:5]
            if kind != "storage":
                raise PthError(f"unsupported persistent reference {kind!r}")
            if key not in storages:
                dtype = _storage_dtype(storage_type)
                dtype = dtype.newbyteorder(">" if byteorder == "big" else "<")
                raw = archive.read(f"{prefix}data/{key}")
                storage = _Storage(dtype, numel)
                if len(raw) < storage.numel * dtype.itemsize:
                    raise PthError(f"storage {key} holds {len(raw)} bytes, fewer than its {numel} elements need")
                storage.data = np.frombuffer(raw, dtype, count=storage.numel).astype(dtype.newbyteorder("="))
                storages[key] = storage
            return storages[key]

        obj = _Unpickler(io.BytesIO(archive.read(pickles[0])), persistent_load).load()
    return _materialize(obj)


def _load_legacy(path: str):
    with open(path, "rb") as f:
        def header():
            return _Unpickler(f, lambda pid: None).load()

        try:
            magic = header()
        except Exception as e:
            raise PthError(f"{path} is neither a zip nor a legacy PyTorch checkpoint: {e}") from None
        if magic != LEGACY_MAGIC:
            raise PthError(f"{path} is not a PyTorch checkpoint (no zip archive, no legacy magic number)")
        protocol = header()
        if protocol != LEGACY_PROTOCOL:
            raise PthError(f"{path}: unsupported legacy protocol version {protocol}")
        sys_info = header()
        little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
        storages: dict[str, _Storage] = {}

        def persistent_load(pid):
            kind = pid[0]
            if kind == "module":  # ('module', class, source file, source): the class, for the check torch skips
                return pid[1]
            if kind != "storage":
                raise PthError(f"unsupported persistent reference {kind!r}")
            storage_type, key, _location, numel = pid[1:5]
            view = pid[5] if len(pid) > 5 else None
            if key not in storages:
                storages[key] = _Storage(_storage_dtype(storage_type), numel)
            if view is not None:
                _view_key, offset, view_numel = view
                return _StorageView(storages[key], offset, view_numel)
            return storages[key]

        obj = _Unpickler(f, persistent_load).load()
        keys = _Unpickler(f, lambda pid: None).load()
        for key in keys:
            storage = storages[key]
            dtype = storage.dtype.newbyteorder("<" if little else ">")
            (numel,) = struct.unpack("<q" if little else ">q", f.read(8))
            raw = f.read(numel * dtype.itemsize)
            if len(raw) < numel * dtype.itemsize:
                raise PthError(f"{path} ends inside storage {key}: truncated file")
            storage.data = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
    return _materialize(obj)


def load(path: str):
    """The object saved in a `.pth` file (either layout), with tensors as numpy arrays."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    return _load_legacy(path)


def module_state_dict(module: PickledObject, prefix: str = "") -> "collections.OrderedDict[str, np.ndarray]":
    """What `module.state_dict()` returns for a pickled `nn.Module`: its parameters and buffers by dotted name."""
    out = collections.OrderedDict()
    attributes = module.attributes()
    for group in ("_parameters", "_buffers"):
        for name, value in (attributes.get(group) or {}).items():
            if value is not None:
                out[prefix + name] = value
    for name, child in (attributes.get("_modules") or {}).items():
        if isinstance(child, PickledObject):
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out


def state_dict(obj) -> "collections.OrderedDict[str, np.ndarray]":
    """A flat name -> array dict from what a `.pth` holds: a state dict, a checkpoint dict with a
    'state_dict' entry, or a pickled model (flattened as `Module.state_dict()` names it)."""
    if isinstance(obj, PickledObject):
        return module_state_dict(obj)
    if isinstance(obj, Mapping):
        if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
            return state_dict(obj["state_dict"])
        if all(isinstance(v, np.ndarray) for v in obj.values()):
            return collections.OrderedDict(obj)
    raise PthError(f"expected a state dict or a pickled model, found {type(obj).__name__}")


def load_state_dict(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    """`state_dict(load(path))`."""
    return state_dict(load(path))


# --- writing ---------------------------------------------------------------------------------------

_DTYPE_STORAGES = {dtype_name: storage for storage, dtype_name in _STORAGE_DTYPES.items()}


class _Global:
    """A reference to `module.name` written as a pickle GLOBAL, without importing it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle requires reduce functions to be callable
        raise TypeError("a stand-in for a torch function")


class _StorageRef:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


def _storage_type_name(array: np.ndarray) -> str:
    name = _DTYPE_STORAGES.get(array.dtype.name)
    if name is None:
        raise TypeError(f"no torch storage type for dtype {array.dtype}")
    return name


class _Pickler(pickle._Pickler):
    """The pure-Python pickler, writing numpy arrays as torch tensors and `_Global`s as names.

    Each array becomes a `torch._utils._rebuild_tensor_v2` call on a storage of its own (a
    contiguous little-endian copy, collected in `storages`); the same array object twice is one
    tensor. Storage references are ('storage', type, key, location, numel) in the zip layout,
    with a sixth entry (a view's (key, offset, numel), here None) in the legacy one.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, legacy: bool = False):
        super().__init__(file, protocol=PICKLE_PROTOCOL)
        self.legacy = legacy
        self.storages: list[_StorageRef] = []

    def save_global_ref(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = save_global_ref

    def reducer_override(self, obj):
        if not isinstance(obj, np.ndarray):
            return NotImplemented
        array = np.array(obj, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        array = array.astype(array.dtype.newbyteorder("<")) if array.dtype.byteorder == ">" else array
        _storage_type_name(array)  # fail early on dtypes torch has no storage for
        self.storages.append(_StorageRef(str(len(self.storages)), array))
        stride = tuple(int(np.prod(array.shape[i + 1 :])) for i in range(array.ndim))
        args = (self.storages[-1], 0, tuple(array.shape), stride, False, collections.OrderedDict())
        return _Global("torch._utils", "_rebuild_tensor_v2"), args

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            pid = ("storage", _Global("torch", _storage_type_name(obj.array)), obj.key, "cpu", obj.array.size)
            return (*pid, None) if self.legacy else pid
        return None


def _pickle(obj, legacy: bool = False) -> tuple[bytes, list]:
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, legacy)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


def save(path: str, obj: Any, *, legacy: bool = False) -> None:
    """Write `obj` as `torch.save(obj, path)` would, numpy arrays as tensors: a zip archive, or the
    pre-1.6 legacy stream with `legacy=True`. `obj` is a state dict (name -> array) or any
    picklable object holding arrays (the tests write stand-ins of pickled nn.Modules)."""
    data_pkl, storages = _pickle(obj, legacy)
    if legacy:
        sys_info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}
        with open(path, "wb") as f:
            for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, sys_info):
                f.write(_pickle(header)[0])
            f.write(data_pkl)
            f.write(_pickle([s.key for s in storages])[0])
            for s in storages:
                f.write(struct.pack("<q", s.array.size))
                f.write(s.array.tobytes())
        return
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for s in storages:
            archive.writestr(f"archive/data/{s.key}", s.array.tobytes())
        archive.writestr("archive/version", "3\n")
