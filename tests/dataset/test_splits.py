"""Splits by identity: linked identities stay together, no identity in two splits."""

from facedub.dataset.splits import SPLITS, assign_splits, identity_groups


def test_groups_are_the_identities_linked_by_pairs():
    groups = identity_groups(["a", "b", "c", "d", "e"], [("a", "b"), ("b", "c"), ("d", "e")])
    assert groups == [["a", "b", "c"], ["d", "e"]]


def test_no_identity_in_two_splits_and_pairs_stay_inside_one():
    ids = [f"p{k}" for k in range(20)]
    pairs = [(ids[k], ids[k + 1]) for k in range(0, 20, 2)]  # ten groups of two
    out = assign_splits(ids, pairs, (0.6, 0.2, 0.2), seed=3)
    assert set(out) == set(ids) and set(out.values()) <= set(SPLITS)
    for a, b in pairs:
        assert out[a] == out[b]
    counts = {s: sum(1 for v in out.values() if v == s) for s in SPLITS}
    assert counts == {"train": 12, "val": 4, "test": 4}
    # the seed decides which groups go where; the same seed, the same answer
    assert assign_splits(ids, pairs, (0.6, 0.2, 0.2), seed=3) == out
    assert any(assign_splits(ids, pairs, (0.6, 0.2, 0.2), seed=s) != out for s in range(4, 10))


def test_a_split_with_no_share_gets_nothing():
    ids = ["a", "b", "c", "d"]
    out = assign_splits(ids, [("a", "b"), ("c", "d")], (0.5, 0.0, 0.5), seed=0)
    assert sorted(out.values()) == ["test", "test", "train", "train"]


def test_no_split_with_a_share_is_left_empty_when_there_are_groups_enough():
    # groups of 3, 2 and 2 at 70/15/15: the nearest counts would be 5/2/0; every split gets one
    ids = ["a", "b", "c", "d", "e", "f", "g"]
    out = assign_splits(ids, [("a", "b"), ("b", "c"), ("d", "e"), ("f", "g")], (0.7, 0.15, 0.15), seed=0)
    assert sorted(out.values()).count("train") == 3 and set(out.values()) == {"train", "val", "test"}
    # two groups cannot fill three splits: the smaller share stays empty
    out = assign_splits(["a", "b", "c", "d"], [("a", "b"), ("c", "d")], (0.7, 0.2, 0.1), seed=0)
    assert sorted(set(out.values())) == ["train", "val"]
