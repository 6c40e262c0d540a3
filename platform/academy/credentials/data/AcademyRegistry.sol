// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title The academy's credential registry on its ledger.
/// @notice Records, per issuer: its signing keys with their validity periods (added, rotated out,
/// revoked), the Merkle roots of credential batches, and every status change (revocation,
/// suspension). Verifiers read the events: each one sits in a receipt whose trie root is in a
/// block header the validators signed, so a verifier can check them offline.
/// Only the academy (the deployer) writes; issuers are identified by keccak256 of their id URL.
contract AcademyRegistry {
    address public immutable owner;

    struct Batch {
        bytes32 issuer;
        uint64 count;
        uint64 blockNumber;
        uint64 timestamp;
    }

    mapping(bytes32 => Batch) private batches;

    event KeyAdded(bytes32 indexed issuer, string multikey, uint64 validFrom);
    event KeyRetired(bytes32 indexed issuer, string multikey, uint64 validUntil);
    event KeyRevoked(bytes32 indexed issuer, string multikey, uint64 revokedAt);
    event BatchAnchored(bytes32 indexed issuer, bytes32 indexed root, uint64 count);
    event StatusChanged(
        bytes32 indexed issuer, bytes32 indexed list, uint64 index, uint8 purpose, bool value
    );

    error NotOwner();
    error AlreadyAnchored(bytes32 root);

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    function addKey(bytes32 issuer, string calldata multikey, uint64 validFrom) external onlyOwner {
        emit KeyAdded(issuer, multikey, validFrom);
    }

    function retireKey(bytes32 issuer, string calldata multikey, uint64 validUntil)
        external
        onlyOwner
    {
        emit KeyRetired(issuer, multikey, validUntil);
    }

    function revokeKey(bytes32 issuer, string calldata multikey, uint64 revokedAt)
        external
        onlyOwner
    {
        emit KeyRevoked(issuer, multikey, revokedAt);
    }

    function anchor(bytes32 issuer, bytes32 root, uint64 count) external onlyOwner {
        if (batches[root].blockNumber != 0) revert AlreadyAnchored(root);
        batches[root] = Batch(issuer, count, uint64(block.number), uint64(block.timestamp));
        emit BatchAnchored(issuer, root, count);
    }

    /// @param purpose 0 = revocation, 1 = suspension
    function setStatus(bytes32 issuer, bytes32 list, uint64 index, uint8 purpose, bool value)
        external
        onlyOwner
    {
        emit StatusChanged(issuer, list, index, purpose, value);
    }

    function batchOf(bytes32 root)
        external
        view
        returns (bytes32 issuer, uint64 count, uint64 blockNumber, uint64 timestamp)
    {
        Batch memory b = batches[root];
        return (b.issuer, b.count, b.blockNumber, b.timestamp);
    }
}
