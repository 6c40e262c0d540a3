"""JupyterHub in front of academy: the embedded hub configuration, the authenticator that asks
academy for passwords, the spawner that hands each learner's JupyterLab its environment, and the
launcher behind ``academy up``.

The production hub configuration (containers, Kubernetes) lives in ``deploy/``; this package is
the one-machine default and the pieces both share.
"""
