"""What the Python Workers runtime provides, as data: its Python versions, the modules it
injects, and the packages with compiled (WebAssembly) code its Pyodide distribution ships.

Everything a bundle needs beyond these is vendored as pure Python into `python_modules/`.

Sources (looked up 2026-11-24):
- Python version by compatibility date/flag, and the Pyodide package index each version
  resolves against: cloudflare/workers-py, `packages/cli/src/pywrangler/metadata.py`
  (`PYTHON_COMPAT_VERSIONS`: 3.13 with flag `python_workers_20250116` or compatibility date
  >= 2025-09-29, else 3.12 with `python_workers`; 3.14 is experimental) and
  `pywrangler/utils.py` (`get_pyodide_index`: 3.12 -> Pyodide 0.27.7, 3.13 -> 0.28.3).
- Modules the runtime injects: the Python Workers docs (`js` FFI module, the `workers` SDK
  with `WorkerEntrypoint`, Pyodide's `pyodide` package) and workers-py
  `packages/runtime-sdk/src/` (`workers/`, and the top-level `asgi` module older runtimes
  expose); "Python Workers support pure and PyEmscripten Python packages on PyPI.
  Additionally, Python Workers support packages that are included in Pyodide."
  (developers.cloudflare.com/workers/languages/python/packages/).
- Compiled packages: `pyodide-lock.json` of the `pyodide` npm package, versions 0.27.7 and
  0.28.3: every `package` whose wheel is not `*-none-any` (pure packages are vendored from
  PyPI instead), leaving out test-only packages, with its version, import names and the
  Python packages it depends on (shared libraries left out).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple


class Provided(NamedTuple):
    """A package the runtime provides: its version, import names and Python dependencies."""

    version: str
    imports: tuple[str, ...]
    depends: tuple[str, ...]


@dataclass(frozen=True)
class WorkersPython:
    """One Python version of the Workers runtime and what comes with it."""

    version: str  # "3.12"
    pyodide: str  # Pyodide release whose package set the runtime provides
    uv_platform: str  # `uv --python-platform` value for this Pyodide ABI
    compiled: Mapping[str, Provided]  # normalised distribution name -> what is provided

    def provided_imports(self, names: frozenset[str]) -> frozenset[str]:
        """Top-level import names of the provided packages `names` (normalised)."""
        return frozenset(
            module.split(".")[0] for name in names for module in self.compiled[name].imports
        )


# Modules of the runtime itself, available to every Python Worker without vendoring.
RUNTIME_MODULES = frozenset({"js", "pyodide", "pyodide_js", "_pyodide", "workers", "asgi"})

# Compatibility flags that choose a Python version (see `python_for`).
PYTHON_313_FLAG = "python_workers_20250116"
PYTHON_313_DATE = dt.date(2025, 9, 29)
PYTHON_314_FLAG = "pythonWorkers20260610"

_NORMALISE = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return _NORMALISE.sub("-", name).lower()


PYODIDE_0_27_7: dict[str, Provided] = {
    "aiohttp": Provided(
        "3.9.5",
        ("aiohttp",),
        (
            "aiosignal",
            "async-timeout",
            "attrs",
            "charset-normalizer",
            "frozenlist",
            "multidict",
            "yarl",
        ),
    ),
    "apsw": Provided("3.47.2.0", ("apsw",), ()),
    "argon2-cffi-bindings": Provided("21.2.0", ("_argon2_cffi_bindings",), ("cffi",)),
    "arro3-compute": Provided("0.4.1", ("arro3.compute",), ("arro3-core",)),
    "arro3-core": Provided("0.4.1", ("arro3.core",), ()),
    "arro3-io": Provided("0.4.1", ("arro3.io",), ("arro3-core",)),
    "astropy": Provided(
        "7.0.0", ("astropy",), ("astropy-iers-data", "numpy", "packaging", "pyerfa", "pyyaml")
    ),
    "awkward-cpp": Provided("44", ("awkward_cpp",), ("numpy",)),
    "b2d": Provided("0.7.4", ("b2d",), ("annotated-types", "numpy", "pydantic", "setuptools")),
    "bcrypt": Provided("4.1.2", ("bcrypt",), ()),
    "biopython": Provided("1.84", ("Bio", "BioSQL"), ("numpy",)),
    "bitarray": Provided("2.9.2", ("bitarray",), ()),
    "boost-histogram": Provided("1.5.0", ("boost_histogram",), ("numpy",)),
    "brotli": Provided("1.1.0", ("brotli",), ()),
    "cartopy": Provided(
        "0.24.1", ("cartopy",), ("matplotlib", "pyproj", "pyshp", "scipy", "shapely")
    ),
    "casadi": Provided("3.6.7", ("casadi",), ("numpy",)),
    "cbor-diag": Provided("1.0.1", ("cbor_diag",), ()),
    "cffi": Provided("1.17.1", ("cffi",), ("pycparser",)),
    "cftime": Provided("1.6.4.post1", ("cftime",), ("numpy",)),
    "clarabel": Provided("0.9.0", ("clarabel",), ("numpy", "scipy")),
    "clingo": Provided("5.7.1", ("clingo",), ("cffi",)),
    "contourpy": Provided("1.3.0", ("contourpy",), ("numpy",)),
    "coolprop": Provided("6.6.0", ("CoolProp",), ("matplotlib", "numpy")),
    "coverage": Provided("7.4.4", ("coverage",), ()),
    "cramjam": Provided("2.8.3", ("cramjam",), ()),
    "crc32c": Provided("2.7.1", ("crc32c",), ()),
    "cryptography": Provided("42.0.5", ("cryptography",), ("cffi", "six")),
    "css-inline": Provided("0.14.6", ("css_inline",), ()),
    "cysignals": Provided("1.12.2", ("cysignals",), ()),
    "cytoolz": Provided("0.12.3", ("cytoolz",), ("toolz",)),
    "duckdb": Provided("1.1.2", ("duckdb",), ()),
    "ewah-bool-utils": Provided("1.2.2", ("ewah_bool_utils",), ()),
    "fastparquet": Provided(
        "2024.5.0", ("fastparquet",), ("cramjam", "fsspec", "numpy", "packaging", "pandas")
    ),
    "fiona": Provided(
        "1.9.5", ("fiona",), ("attrs", "certifi", "click", "cligj", "setuptools", "six")
    ),
    "freesasa": Provided("2.2.1", ("freesasa",), ()),
    "frozenlist": Provided("1.4.1", ("frozenlist",), ()),
    "galpy": Provided(
        "1.10.1", ("galpy",), ("astropy", "future", "matplotlib", "numpy", "scipy", "setuptools")
    ),
    "gensim": Provided("4.3.3", ("gensim",), ("numpy", "scipy", "six", "smart-open", "wrapt")),
    "gmpy2": Provided("2.1.5", ("gmpy2",), ()),
    "gsw": Provided("3.6.19", ("gsw",), ("numpy",)),
    "h3": Provided("4.2.1", ("h3",), ()),
    "h5py": Provided("3.12.1", ("h5py",), ("numpy", "pkgconfig")),
    "igraph": Provided("0.11.4", ("igraph",), ("texttable",)),
    "iminuit": Provided("2.30.1", ("iminuit",), ("numpy",)),
    "jiter": Provided("0.8.2", ("jiter",), ()),
    "kiwisolver": Provided("1.4.5", ("kiwisolver",), ()),
    "lakers-python": Provided("0.4.1", ("lakers",), ()),
    "lazy-object-proxy": Provided("1.10.0", ("lazy_object_proxy",), ()),
    "libcst": Provided("1.4.0", ("libcst",), ("pyyaml",)),
    "lightgbm": Provided("4.5.0", ("lightgbm",), ("numpy", "scikit-learn", "scipy")),
    "logbook": Provided("1.7.0.post0", ("logbook",), ()),
    "lxml": Provided("5.2.1", ("lxml",), ()),
    "markupsafe": Provided("2.1.5", ("markupsafe",), ()),
    "matplotlib": Provided(
        "3.8.4",
        ("matplotlib", "mpl_toolkits", "pylab"),
        (
            "contourpy",
            "cycler",
            "fonttools",
            "kiwisolver",
            "matplotlib-pyodide",
            "numpy",
            "packaging",
            "pillow",
            "pyparsing",
            "python-dateutil",
            "pytz",
        ),
    ),
    "memory-allocator": Provided("0.1.4", ("memory_allocator",), ()),
    "mmh3": Provided("4.1.0", ("mmh3",), ()),
    "msgpack": Provided("1.1.0", ("msgpack",), ()),
    "msgspec": Provided("0.18.6", ("msgspec",), ()),
    "msprime": Provided("1.3.3", ("msprime",), ("demes", "newick", "numpy", "rpds-py", "tskit")),
    "multidict": Provided("6.0.5", ("multidict",), ()),
    "mypy": Provided("1.9.0", ("mypy", "mypyc"), ()),
    "netcdf4": Provided("1.7.2", ("netCDF4",), ("certifi", "cftime", "h5py", "numpy", "packaging")),
    "nh3": Provided("0.2.17", ("nh3",), ()),
    "nlopt": Provided("2.9.1", ("nlopt",), ("numpy",)),
    "numcodecs": Provided("0.13.1", ("numcodecs",), ("msgpack", "numpy")),
    "numpy": Provided("2.0.2", ("numpy",), ()),
    "opencv-python": Provided("4.10.0.84", ("cv2",), ("numpy",)),
    "orjson": Provided("3.10.1", ("orjson",), ()),
    "osqp": Provided("1.0.0", ("osqp",), ("jinja2", "numpy", "scipy")),
    "pandas": Provided("2.2.3", ("pandas",), ("numpy", "python-dateutil", "pytz")),
    "pcodec": Provided("0.3.3", ("pcodec",), ("numpy",)),
    "pi-heif": Provided("0.21.0", ("pi_heif",), ("cffi", "pillow")),
    "pillow": Provided("10.2.0", ("PIL",), ()),
    "pillow-heif": Provided("0.20.0", ("pillow_heif",), ("cffi", "pillow")),
    "polars": Provided("1.18.0", ("polars",), ()),
    "pplpy": Provided("0.8.10", ("ppl",), ("cysignals", "gmpy2")),
    "primecountpy": Provided("0.1.0", ("primecountpy",), ("cysignals",)),
    "protobuf": Provided("5.29.2", ("google",), ()),
    "pyarrow": Provided("18.1.0", ("pyarrow",), ("numpy", "pandas", "pyodide-unix-timezones")),
    "pyclipper": Provided("1.3.0.post5", ("pyclipper",), ()),
    "pycryptodome": Provided("3.20.0", ("Crypto",), ()),
    "pydantic-core": Provided("2.27.2", ("pydantic_core",), ()),
    "pyerfa": Provided("2.0.1.4", ("erfa",), ("numpy",)),
    "pygame-ce": Provided("2.4.1", ("pygame",), ()),
    "pyheif": Provided("0.8.0", ("pyheif",), ("cffi",)),
    "pyiceberg": Provided(
        "0.6.0",
        ("pyiceberg",),
        (
            "click",
            "fsspec",
            "mmh3",
            "pydantic",
            "pyparsing",
            "requests",
            "rich",
            "sortedcontainers",
            "sqlalchemy",
            "strictyaml",
        ),
    ),
    "pyinstrument": Provided("4.4.0", ("pyinstrument",), ()),
    "pynacl": Provided("1.5.0", ("nacl",), ("cffi",)),
    "pyproj": Provided("3.6.1", ("pyproj",), ("certifi",)),
    "pyrsistent": Provided("0.20.0", ("_pyrsistent_version", "pyrsistent"), ()),
    "pysam": Provided("0.22.0", ("pysam",), ()),
    "python-flint": Provided("0.6.0", ("flint",), ()),
    "python-sat": Provided("1.8.dev17", ("pysat",), ("six",)),
    "python-solvespace": Provided("3.0.8", ("python_solvespace",), ()),
    "pywavelets": Provided("1.8.0", ("pywt",), ("numpy",)),
    "pyxel": Provided("1.9.10", ("pyxel",), ()),
    "pyxirr": Provided("0.10.6", ("pyxirr",), ()),
    "pyyaml": Provided("6.0.2", ("_yaml", "yaml"), ()),
    "rasterio": Provided(
        "1.4.2", ("rasterio",), ("affine", "attrs", "certifi", "click", "cligj", "numpy")
    ),
    "rateslib": Provided("1.6.0", ("rateslib",), ("matplotlib", "numpy", "pandas")),
    "rebound": Provided("4.4.3", ("rebound",), ("numpy",)),
    "reboundx": Provided("4.3.0", ("reboundx",), ("numpy", "rebound")),
    "regex": Provided("2024.9.11", ("regex",), ()),
    "river": Provided("0.22.0", ("river",), ("numpy", "pandas", "scipy")),
    "robotraconteur": Provided("1.2.2", ("RobotRaconteur",), ("numpy",)),
    "rpds-py": Provided("0.18.0", ("rpds",), ()),
    "scikit-image": Provided(
        "0.25.0",
        ("skimage",),
        (
            "imageio",
            "lazy-loader",
            "networkx",
            "numpy",
            "packaging",
            "pillow",
            "pywavelets",
            "scipy",
        ),
    ),
    "scikit-learn": Provided("1.6.1", ("sklearn",), ("joblib", "scipy", "threadpoolctl")),
    "scipy": Provided("1.14.1", ("scipy",), ("numpy",)),
    "shapely": Provided("2.0.6", ("shapely",), ("numpy",)),
    "simplejson": Provided("3.19.2", ("simplejson",), ()),
    "sisl": Provided(
        "0.15.1",
        ("sisl", "sisl_toolbox"),
        ("matplotlib", "numpy", "pandas", "pyparsing", "scipy", "tqdm", "xarray"),
    ),
    "sourmash": Provided(
        "4.8.11",
        ("sourmash",),
        (
            "bitstring",
            "cachetools",
            "cffi",
            "deprecation",
            "matplotlib",
            "numpy",
            "scipy",
            "screed",
        ),
    ),
    "soxr": Provided("0.5.0.post1", ("soxr",), ("numpy",)),
    "sparseqr": Provided("1.2", ("sparseqr",), ("cffi", "numpy", "pycparser", "scipy")),
    "sqlalchemy": Provided("2.0.29", ("sqlalchemy",), ("typing-extensions",)),
    "statsmodels": Provided(
        "0.14.4", ("statsmodels",), ("numpy", "packaging", "pandas", "patsy", "scipy")
    ),
    "swiglpk": Provided("5.0.10", ("swiglpk",), ()),
    "tiktoken": Provided("0.8.0", ("tiktoken", "tiktoken_ext"), ("regex", "requests")),
    "traits": Provided("6.4.3", ("traits",), ()),
    "tree-sitter": Provided("0.23.2", ("tree_sitter",), ()),
    "tree-sitter-go": Provided("0.23.3", ("tree_sitter_go",), ("tree-sitter",)),
    "tree-sitter-java": Provided("0.23.4", ("tree_sitter_java",), ("tree-sitter",)),
    "tree-sitter-python": Provided("0.23.4", ("tree_sitter_python",), ("tree-sitter",)),
    "tskit": Provided("0.6.0", ("tskit",), ("jsonschema", "numpy", "rpds-py", "svgwrite")),
    "wordcloud": Provided("1.9.3", ("wordcloud",), ("matplotlib",)),
    "wrapt": Provided("1.16.0", ("wrapt",), ()),
    "xgboost": Provided("2.1.2", ("xgboost",), ("numpy", "scipy", "setuptools")),
    "xxhash": Provided("3.4.1", ("xxhash",), ()),
    "yarl": Provided("1.9.4", ("yarl",), ("idna", "multidict")),
    "yt": Provided(
        "4.3.1",
        ("yt",),
        (
            "cmyt",
            "colorspacious",
            "ewah-bool-utils",
            "matplotlib",
            "numpy",
            "packaging",
            "setuptools",
            "sympy",
            "tomli",
            "tomli-w",
            "tqdm",
            "unyt",
        ),
    ),
    "zengl": Provided("2.7.1", ("_zengl", "zengl"), ()),
    "zfpy": Provided("1.0.1", ("zfpy",), ("numpy",)),
    "zstandard": Provided("0.22.0", ("zstandard",), ("cffi",)),
}


PYODIDE_0_28_3: dict[str, Provided] = {
    "aiohttp": Provided(
        "3.11.13",
        ("aiohttp",),
        (
            "aiohappyeyeballs",
            "aiosignal",
            "async-timeout",
            "attrs",
            "charset-normalizer",
            "frozenlist",
            "multidict",
            "yarl",
        ),
    ),
    "apsw": Provided("3.49.1.0", ("apsw",), ()),
    "argon2-cffi-bindings": Provided("21.2.0", ("_argon2_cffi_bindings",), ("cffi",)),
    "astropy": Provided(
        "7.0.1", ("astropy",), ("astropy-iers-data", "numpy", "packaging", "pyerfa", "pyyaml")
    ),
    "audioop-lts": Provided("0.2.1", ("audioop",), ()),
    "awkward-cpp": Provided("47", ("awkward_cpp",), ("numpy",)),
    "b2d": Provided("0.7.4", ("b2d",), ("annotated-types", "numpy", "pydantic", "setuptools")),
    "bcrypt": Provided("4.3.0", ("bcrypt",), ()),
    "biopython": Provided("1.85", ("Bio", "BioSQL"), ("numpy",)),
    "bitarray": Provided("3.6.0", ("bitarray",), ()),
    "blosc2": Provided(
        "3.5.1", ("blosc2",), ("msgpack", "ndindex", "numpy", "platformdirs", "requests")
    ),
    "boost-histogram": Provided("1.5.0", ("boost_histogram",), ("numpy",)),
    "brotli": Provided("1.1.0", ("brotli",), ()),
    "casadi": Provided("3.7.0", ("casadi",), ("numpy",)),
    "cbor-diag": Provided("1.0.1", ("cbor_diag",), ()),
    "cffi": Provided("1.17.1", ("cffi",), ("pycparser",)),
    "cftime": Provided("1.6.4.post1", ("cftime",), ("numpy",)),
    "clarabel": Provided("0.11.0", ("clarabel",), ("numpy", "scipy")),
    "clingo": Provided("5.7.1", ("clingo",), ("cffi",)),
    "cobs": Provided("1.2.1", ("cobs",), ()),
    "contourpy": Provided("1.3.1", ("contourpy",), ("numpy",)),
    "coolprop": Provided("6.6.0", ("CoolProp",), ("matplotlib", "numpy")),
    "coverage": Provided("7.6.12", ("coverage",), ()),
    "cramjam": Provided("2.10.0rc1", ("cramjam",), ()),
    "crc32c": Provided("2.7.1", ("crc32c",), ()),
    "cryptography": Provided("45.0.5", ("cryptography",), ("cffi", "six")),
    "css-inline": Provided("0.16.0", ("css_inline",), ()),
    "cysignals": Provided("1.12.3", ("cysignals",), ()),
    "cytoolz": Provided("1.0.1", ("cytoolz",), ("toolz",)),
    "ewah-bool-utils": Provided("1.2.2", ("ewah_bool_utils",), ("numpy",)),
    "fastparquet": Provided(
        "2024.11.0", ("fastparquet",), ("cramjam", "fsspec", "numpy", "packaging", "pandas")
    ),
    "fiona": Provided(
        "1.9.5", ("fiona",), ("attrs", "certifi", "click", "cligj", "setuptools", "six")
    ),
    "freesasa": Provided("2.2.1", ("freesasa",), ()),
    "frozenlist": Provided("1.6.0", ("frozenlist",), ()),
    "galpy": Provided(
        "1.10.2", ("galpy",), ("astropy", "future", "matplotlib", "numpy", "scipy", "setuptools")
    ),
    "gmpy2": Provided("2.1.5", ("gmpy2",), ()),
    "gsw": Provided("3.6.19", ("gsw",), ("numpy",)),
    "h3": Provided("4.2.2", ("h3",), ()),
    "h5py": Provided("3.13.0", ("h5py",), ("numpy", "pkgconfig")),
    "igraph": Provided("0.11.8", ("igraph",), ("texttable",)),
    "imgui-bundle": Provided("1.92.0", ("imgui_bundle",), ("munch", "numpy", "pydantic")),
    "iminuit": Provided("2.30.1", ("iminuit",), ("numpy",)),
    "jiter": Provided("0.9.0", ("jiter",), ()),
    "kiwisolver": Provided("1.4.8", ("kiwisolver",), ()),
    "lakers-python": Provided("0.5.0", ("lakers",), ()),
    "lazy-object-proxy": Provided("1.10.0", ("lazy_object_proxy",), ()),
    "libcst": Provided("1.6.0", ("libcst",), ("pyyaml",)),
    "lightgbm": Provided("4.6.0", ("lightgbm",), ("numpy", "scikit-learn", "scipy")),
    "logbook": Provided("1.8.0", ("logbook",), ()),
    "lxml": Provided("6.0.0", ("lxml",), ()),
    "lz4": Provided("4.4.4", ("lz4",), ()),
    "markupsafe": Provided("3.0.2", ("markupsafe",), ()),
    "matplotlib": Provided(
        "3.8.4",
        ("matplotlib", "mpl_toolkits", "pylab"),
        (
            "contourpy",
            "cycler",
            "fonttools",
            "kiwisolver",
            "numpy",
            "packaging",
            "pillow",
            "pyparsing",
            "python-dateutil",
            "pytz",
        ),
    ),
    "memory-allocator": Provided("0.1.4", ("memory_allocator",), ()),
    "mmh3": Provided("5.1.0", ("mmh3",), ()),
    "msgpack": Provided("1.1.1", ("msgpack",), ()),
    "msgspec": Provided("0.19.0", ("msgspec",), ()),
    "msprime": Provided("1.3.3", ("msprime",), ("demes", "newick", "numpy", "rpds-py", "tskit")),
    "multidict": Provided("6.6.3", ("multidict",), ()),
    "mypy": Provided("1.15.0", ("mypy", "mypyc"), ()),
    "ndindex": Provided("1.9.2", ("ndindex",), ()),
    "netcdf4": Provided("1.7.2", ("netCDF4",), ("certifi", "cftime", "h5py", "numpy", "packaging")),
    "nh3": Provided("0.2.21", ("nh3",), ()),
    "nlopt": Provided("2.9.1", ("nlopt",), ("numpy",)),
    "numcodecs": Provided("0.13.1", ("numcodecs",), ("msgpack", "numpy")),
    "numpy": Provided("2.2.5", ("numpy",), ()),
    "opencv-python": Provided("4.11.0.86", ("cv2",), ("numpy",)),
    "orjson": Provided("3.10.16", ("orjson",), ()),
    "pandas": Provided("2.3.1", ("pandas",), ("numpy", "python-dateutil", "pytz")),
    "pcodec": Provided("0.3.3", ("pcodec",), ("numpy",)),
    "pi-heif": Provided("0.21.0", ("pi_heif",), ("cffi", "pillow")),
    "pillow": Provided("11.3.0", ("PIL",), ()),
    "pillow-heif": Provided("1.0.0", ("pillow_heif",), ("cffi", "pillow")),
    "pplpy": Provided("0.8.10", ("ppl",), ("cysignals", "gmpy2")),
    "primecountpy": Provided("0.1.1", ("primecountpy",), ("cysignals",)),
    "protobuf": Provided("6.31.1", ("google",), ()),
    "pyclipper": Provided("1.3.0.post6", ("pyclipper",), ()),
    "pycryptodome": Provided("3.21.0", ("Crypto",), ()),
    "pydantic-core": Provided("2.27.2", ("pydantic_core",), ("typing-extensions",)),
    "pyerfa": Provided("2.0.1.5", ("erfa",), ("numpy",)),
    "pyheif": Provided("0.8.0", ("pyheif",), ("cffi",)),
    "pyiceberg": Provided(
        "0.9.0",
        ("pyiceberg",),
        (
            "cachetools",
            "click",
            "fsspec",
            "mmh3",
            "pydantic",
            "pyparsing",
            "requests",
            "rich",
            "sortedcontainers",
            "sqlalchemy",
            "strictyaml",
        ),
    ),
    "pyinstrument": Provided("5.0.1", ("pyinstrument",), ()),
    "pymupdf": Provided("1.26.3", ("fitz", "pymupdf"), ()),
    "pynacl": Provided("1.5.0", ("nacl",), ("cffi",)),
    "pyrsistent": Provided("0.20.0", ("_pyrsistent_version", "pyrsistent"), ()),
    "pysam": Provided("0.23.0", ("pysam",), ()),
    "pytaglib": Provided("3.0.1", ("taglib",), ()),
    "python-flint": Provided("0.7.1", ("flint",), ()),
    "python-sat": Provided("1.8.dev17", ("pysat",), ("six",)),
    "python-solvespace": Provided("3.0.8", ("python_solvespace",), ()),
    "pywavelets": Provided("1.8.0", ("pywt",), ("numpy",)),
    "pyxel": Provided("1.9.10", ("pyxel",), ()),
    "pyxirr": Provided("0.10.6", ("pyxirr",), ()),
    "pyyaml": Provided("6.0.2", ("_yaml", "yaml"), ()),
    "rasterio": Provided(
        "1.4.3", ("rasterio",), ("affine", "attrs", "certifi", "click", "cligj", "numpy")
    ),
    "rateslib": Provided("2.0.1", ("rateslib",), ("matplotlib", "numpy", "pandas")),
    "rebound": Provided("4.4.7", ("rebound",), ("numpy",)),
    "reboundx": Provided("4.4.1", ("reboundx",), ("numpy", "rebound")),
    "regex": Provided("2024.11.6", ("regex",), ()),
    "river": Provided("0.22.0", ("river",), ("numpy", "pandas", "scipy")),
    "robotraconteur": Provided("1.2.5", ("RobotRaconteur",), ("numpy",)),
    "rpds-py": Provided("0.23.1", ("rpds",), ()),
    "rustworkx": Provided("0.17.0a3", ("rustworkx",), ()),
    "scikit-image": Provided(
        "0.25.2",
        ("skimage",),
        (
            "imageio",
            "lazy-loader",
            "networkx",
            "numpy",
            "packaging",
            "pillow",
            "pywavelets",
            "scipy",
        ),
    ),
    "scikit-learn": Provided("1.7.0", ("sklearn",), ("joblib", "scipy", "threadpoolctl")),
    "scipy": Provided("1.14.1", ("scipy",), ("numpy",)),
    "shapely": Provided("2.0.7", ("shapely",), ("numpy",)),
    "simplejson": Provided("3.20.1", ("simplejson",), ()),
    "sisl": Provided(
        "0.16.2",
        ("sisl", "sisl_toolbox"),
        ("matplotlib", "numpy", "pandas", "pyparsing", "scipy", "tqdm", "xarray"),
    ),
    "soundfile": Provided("0.12.1", ("soundfile",), ("cffi", "numpy")),
    "sourmash": Provided(
        "4.8.14",
        ("sourmash",),
        (
            "bitstring",
            "cachetools",
            "cffi",
            "deprecation",
            "matplotlib",
            "numpy",
            "scipy",
            "screed",
        ),
    ),
    "soxr": Provided("0.5.0.post1", ("soxr",), ("numpy",)),
    "sparseqr": Provided("1.2", ("sparseqr",), ("cffi", "numpy", "pycparser", "scipy")),
    "sqlalchemy": Provided("2.0.39", ("sqlalchemy",), ("typing-extensions",)),
    "statsmodels": Provided(
        "0.14.4", ("statsmodels",), ("numpy", "packaging", "pandas", "patsy", "scipy")
    ),
    "swiglpk": Provided("5.0.12", ("swiglpk",), ()),
    "texture2ddecoder": Provided("1.0.5", ("texture2ddecoder",), ()),
    "tiktoken": Provided("0.9.0", ("tiktoken", "tiktoken_ext"), ("regex", "requests")),
    "traits": Provided("7.0.2", ("traits",), ()),
    "tree-sitter": Provided("0.23.2", ("tree_sitter",), ()),
    "tree-sitter-go": Provided("0.23.3", ("tree_sitter_go",), ("tree-sitter",)),
    "tree-sitter-java": Provided("0.23.4", ("tree_sitter_java",), ("tree-sitter",)),
    "tree-sitter-python": Provided("0.23.4", ("tree_sitter_python",), ("tree-sitter",)),
    "tskit": Provided("0.6.4", ("tskit",), ("jsonschema", "numpy", "rpds-py")),
    "ujson": Provided("5.10.0", ("ujson",), ()),
    "wordcloud": Provided("1.9.4", ("wordcloud",), ("matplotlib",)),
    "wrapt": Provided("1.17.2", ("wrapt",), ()),
    "xgboost": Provided("2.1.4", ("xgboost",), ("numpy", "scipy", "setuptools")),
    "xxhash": Provided("3.5.0", ("xxhash",), ()),
    "yarl": Provided("1.18.3", ("yarl",), ("idna", "multidict", "propcache")),
    "yt": Provided(
        "4.4.0",
        ("yt",),
        (
            "cmyt",
            "colorspacious",
            "ewah-bool-utils",
            "matplotlib",
            "numpy",
            "packaging",
            "setuptools",
            "sympy",
            "tomli",
            "tomli-w",
            "tqdm",
            "unyt",
        ),
    ),
    "zengl": Provided("2.7.1", ("_zengl", "zengl"), ()),
    "zfpy": Provided("1.0.1", ("zfpy",), ("numpy",)),
    "zstandard": Provided("0.23.0", ("zstandard",), ("cffi",)),
}


PYTHON_312 = WorkersPython("3.12", "0.27.7", "wasm32-pyodide2024", PYODIDE_0_27_7)
PYTHON_313 = WorkersPython("3.13", "0.28.3", "wasm32-pyodide2025", PYODIDE_0_28_3)


def python_for(compatibility_date: dt.date, flags: list[str]) -> WorkersPython | None:
    """The runtime's Python for these settings, or None for one mcp-deploy does not support
    (the experimental 3.14 flag)."""
    if PYTHON_314_FLAG in flags:
        return None
    if PYTHON_313_FLAG in flags or compatibility_date >= PYTHON_313_DATE:
        return PYTHON_313
    return PYTHON_312
