"""Loaded by Python at start-up in a process ``privsdk run`` launched: guard every SDK client it creates."""

import privsdk

privsdk.instrument()
