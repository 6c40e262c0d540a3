"""``labs.client.connect_partner``: a second in-process chain for cross-chain labs.

Cross-chain labs (HTLC swaps, the institution link capstone) need two chains that share nothing,
so that a transaction or a replayed signature on one has no effect on the other.
"""

from __future__ import annotations

from labs.client import PARTNER_CHAIN_ID, accounts, connect, connect_partner


def _transfer(w3, value: int) -> None:
    sender, receiver = accounts()[0], accounts()[1]
    tx = {
        "to": receiver.address,
        "value": value,
        "gas": 21_000,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    )


def test_partner_is_a_separate_funded_chain() -> None:
    home, partner = connect(), connect_partner()
    assert partner.eth.chain_id == PARTNER_CHAIN_ID != home.eth.chain_id
    assert connect_partner().eth.chain_id == PARTNER_CHAIN_ID  # shared on second use
    receiver = accounts()[1].address
    assert partner.eth.get_balance(accounts()[0].address) > 10**18
    home_before, partner_before = home.eth.get_balance(receiver), partner.eth.get_balance(receiver)
    partner_height = partner.eth.block_number
    _transfer(partner, 12345)
    assert partner.eth.get_balance(receiver) == partner_before + 12345
    assert partner.eth.block_number == partner_height + 1
    assert home.eth.get_balance(receiver) == home_before, "the home chain saw nothing"
    other = connect_partner(chain_id=9009)
    assert other.eth.chain_id == 9009 and other.eth.block_number == 0
