"""academy: the ChainAcademy platform service and the ``academy`` command line."""

import labs.minichain  # noqa: F401  (keeps the recursion limit where it was: see its import)
