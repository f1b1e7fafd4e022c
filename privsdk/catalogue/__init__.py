"""The guarantee catalogue: what each vendor offering promises, as sourced data.

One TOML file per vendor sits beside this module. A vendor's file is read and
validated the first time a decision needs it, so importing privsdk and
deciding for one vendor never parses the others.
"""

from __future__ import annotations

import os
import threading

from privsdk.catalogue.facts import FACT_NAMES, Fact, How, Source
from privsdk.catalogue.loader import load_vendor_file
from privsdk.catalogue.model import Attestation, FineTuned, Limit, Offering, VendorCatalogue

__all__ = [
    "FACT_NAMES",
    "Attestation",
    "Catalogue",
    "Fact",
    "FineTuned",
    "How",
    "Limit",
    "Offering",
    "Source",
    "VendorCatalogue",
    "default_catalogue",
]

# os.path rather than pathlib: pathlib costs ~3 ms to import, on the path of the first decision.
DATA_DIR = os.path.dirname(os.path.abspath(__file__))


class Catalogue:
    """All vendors' files in a directory, each loaded on first use."""

    def __init__(self, directory: str | os.PathLike[str] = DATA_DIR) -> None:
        self.directory = os.fspath(directory)
        self._vendors: dict[str, VendorCatalogue] = {}
        self._lock = threading.RLock()
        self.vendor_names: tuple[str, ...] = tuple(
            sorted(f[: -len(".toml")] for f in os.listdir(self.directory) if f.endswith(".toml"))
        )

    def vendor(self, name: str) -> VendorCatalogue | None:
        """The vendor's catalogue, or None when privsdk has no file for it."""
        found = self._vendors.get(name)
        if found is not None or name not in self.vendor_names:
            return found
        with self._lock:  # RLock: an ``inherits`` may load another vendor from inside a load
            if name not in self._vendors:
                self._vendors[name] = load_vendor_file(os.path.join(self.directory, f"{name}.toml"), self.offering)
            return self._vendors[name]

    def offering(self, offering_id: str) -> Offering | None:
        """The offering ``vendor.name``, or None."""
        vendor = self.vendor(offering_id.partition(".")[0])
        return vendor.offerings.get(offering_id) if vendor else None

    def all_vendors(self) -> list[VendorCatalogue]:
        """Every vendor, loading all files (for listings and tests)."""
        return [v for n in self.vendor_names if (v := self.vendor(n)) is not None]


_default: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """The catalogue packaged with privsdk (one instance per process)."""
    global _default
    if _default is None:
        _default = Catalogue()
    return _default
