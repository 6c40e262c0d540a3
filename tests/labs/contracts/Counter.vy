# pragma version ~=0.4.3
"""A counter that anyone may bump; every bump emits an event naming who and the new count."""

event Bumped:
    sender: indexed(address)
    count: uint256

count: public(uint256)


@deploy
def __init__(start: uint256):
    self.count = start


@external
def bump(step: uint256) -> uint256:
    assert step > 0, "Counter: step must be positive"
    self.count += step
    log Bumped(sender=msg.sender, count=self.count)
    return self.count
