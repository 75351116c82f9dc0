"""The lease decisions of ``routing.nats.leases`` as plain functions: each live node aims
for an even share of an operator's binds, takes the lowest free slots up to it, and lets
its highest slots go when it holds more (a node joined)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from routing.nats.leases import plan, share


def test_share_is_even_and_covers_every_bind() -> None:
    assert share(3, 1) == 3
    assert share(3, 2) == 2
    assert share(3, 3) == 1
    assert share(3, 5) == 1
    assert share(0, 2) == 0
    assert share(4, 0) == 4  # no presence seen yet: this node counts as the one


def test_plan_takes_the_lowest_free_slots_up_to_the_share() -> None:
    assert plan(5, mine=set(), taken={0, 2}, want=2) == ([1, 3], [])
    assert plan(5, mine={1}, taken={0, 1}, want=2) == ([2], [])
    assert plan(3, mine={0, 1, 2}, taken={0, 1, 2}, want=2) == ([], [2])
    assert plan(3, mine={0}, taken={0, 1, 2}, want=2) == ([], [])  # none free


@given(binds=st.integers(0, 12), nodes=st.integers(1, 6), data=st.data())
def test_nodes_that_follow_the_plan_never_hold_more_than_binds(binds: int, nodes: int,
                                                               data: st.DataObject) -> None:
    """Rounds of nodes taking and letting go in any order end with every slot held once and
    no node above its share."""
    held: list[set[int]] = [set() for _ in range(nodes)]
    want = share(binds, nodes)
    for _ in range(3 * nodes):
        i = data.draw(st.integers(0, nodes - 1))
        taken = set().union(*held)
        take, drop = plan(binds, held[i], taken, want)
        held[i] -= set(drop)
        for k in take:
            assert k not in set().union(*held)
            held[i].add(k)
        assert sum(len(h) for h in held) <= binds
    for i in range(nodes):  # a last round each, in order
        take, drop = plan(binds, held[i], set().union(*held), want)
        held[i] = (held[i] - set(drop)) | set(take)
    assert all(len(h) <= want for h in held)
    assert sum(len(h) for h in held) == min(binds, nodes * want)
