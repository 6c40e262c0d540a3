"""ChainMaker's face of a minichain: its orgs and certificates, chain configuration and RpcNode.

A learner who practises with the official ChainMaker SDK here should meet the same files, names
and answers on a real ChainMaker network. So this package writes ``crypto-config/`` in
chainmaker-cryptogen's layout (:mod:`.cryptogen`), a chain configuration shaped like ChainMaker's
``bc1.yml`` and an ``sdk_config.yml`` the SDK reads as it is (:mod:`.chainconfig`), checks signed
requests against the orgs' CAs and policies (:mod:`.auth`), runs them on the chain's EVM state
(:mod:`.evm`) and serves the gRPC ``RpcNode`` service (:mod:`.service`) with the protobuf modules
the SDK itself ships (:mod:`.pb`).
"""
