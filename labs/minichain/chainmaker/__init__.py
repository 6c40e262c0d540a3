"""ChainMaker's face of a minichain: its orgs and certificates, chain configuration and RpcNode.

A learner who practises with the official ChainMaker SDK here should meet the same files, names
and answers on a real ChainMaker network. So this package writes ``crypto-config/`` in
chainmaker-cryptogen's layout (:mod:`.cryptogen`), a chain configuration shaped like ChainMaker's
``bc1.yml`` and an ``sdk_config.yml`` the SDK reads as it is (:mod:`.chainconfig`), checks signed
requests against the orgs' CAs and policies (:mod:`.auth`), runs them on the chain's EVM state
(:mod:`.executor`) and serves the gRPC ``RpcNode`` service (:mod:`.service`) with the protobuf
modules the SDK itself ships (:mod:`.pb`). The chain governs itself as ChainMaker does: updates to
its configuration (:mod:`.chainconfig_update`) and to certificates (:mod:`.certmanage`) are
requests in blocks, and the configuration they make lives in the state (:mod:`.configstate`);
each node reports its pool and consensus state (:mod:`.nodestatus`).
"""
