// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Only the deployer may change the value; anyone else gets a revert with a reason string.
contract Guarded {
    address public owner;
    uint256 public value;

    constructor(bool refuse) {
        require(!refuse, "Guarded: refused to deploy");
        owner = msg.sender;
    }

    function set(uint256 newValue) external {
        require(msg.sender == owner, "Guarded: caller is not the owner");
        value = newValue;
    }
}
