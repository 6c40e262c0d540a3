"""ChainMaker's protobuf messages and the RpcNode service, from the modules the official SDK ships.

The server answers with exactly the messages the SDK parses, generated from ChainMaker's own
``.proto`` files; writing them again here could only drift from them.
"""

from __future__ import annotations

from chainmaker.protos.accesscontrol import member_pb2
from chainmaker.protos.api import rpc_node_pb2_grpc
from chainmaker.protos.common import (
    block_pb2,
    contract_pb2,
    request_pb2,
    result_pb2,
    rwset_pb2,
    transaction_pb2,
)
from chainmaker.protos.config import chain_config_pb2, chainmaker_server_pb2
from chainmaker.protos.discovery import discovery_pb2

Member = member_pb2.Member
MemberFull = member_pb2.MemberFull
MemberType = member_pb2.MemberType
TxRequest = request_pb2.TxRequest
Payload = request_pb2.Payload
TxType = request_pb2.TxType
KeyValuePair = request_pb2.KeyValuePair
TxResponse = result_pb2.TxResponse
Result = result_pb2.Result
ContractResult = result_pb2.ContractResult
ContractEvent = result_pb2.ContractEvent
ContractEventInfo = result_pb2.ContractEventInfo
ContractEventInfoList = result_pb2.ContractEventInfoList
CertInfo = result_pb2.CertInfo
CertInfos = result_pb2.CertInfos
SubscribeResult = result_pb2.SubscribeResult
TxStatusCode = result_pb2.TxStatusCode
Block = block_pb2.Block
BlockHeader = block_pb2.BlockHeader
BlockInfo = block_pb2.BlockInfo
Transaction = transaction_pb2.Transaction
TransactionInfo = transaction_pb2.TransactionInfo
TxRWSet = rwset_pb2.TxRWSet
ChainInfo = discovery_pb2.ChainInfo
DiscoveryNode = discovery_pb2.Node
ChainMakerVersionResponse = chainmaker_server_pb2.ChainMakerVersionResponse
ChainConfig = chain_config_pb2.ChainConfig
Contract = contract_pb2.Contract
RuntimeType = contract_pb2.RuntimeType
ContractStatus = contract_pb2.ContractStatus
RpcNodeServicer = rpc_node_pb2_grpc.RpcNodeServicer
add_RpcNodeServicer_to_server = rpc_node_pb2_grpc.add_RpcNodeServicer_to_server

__all__ = [name for name in dir() if name[0].isupper() or name.startswith("add_")]
