"""academy: the ChainAcademy platform service and the ``academy`` command line."""
