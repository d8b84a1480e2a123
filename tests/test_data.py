"""Tests for ``kerox.data``, the ``tf.data`` API over numpy.

TensorFlow is not installed, so expected values are hand computations (stated in comments) or
numpy, following the documented ``tf.data`` semantics. The array fast path (``_array_plan``)
is checked against ordinary iteration for every pipeline shape it supports.
"""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
from kerox import _random
from kerox import data as tfdata
from kerox.data import Dataset, TensorSpec, plan_batches


@pytest.fixture(autouse=True)
def _fresh_global_seed():
    """Tests that call ``_random.set_seed`` must not leak it into other tests."""
    yield
    _random._reset()


def as_list(ds):
    return list(ds.as_numpy_iterator())


def ints(ds):
    return [int(v) for v in ds]


def xy(n=10, d=3):
    x = np.arange(n * d, dtype=np.float32).reshape(n, d)
    y = np.arange(n, dtype=np.int64)
    return x, y


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def test_from_tensor_slices_tuple_rows_and_dtypes():
    x, y = xy(4)
    got = as_list(Dataset.from_tensor_slices((x, y)))
    assert len(got) == 4
    for i, (a, b) in enumerate(got):
        np.testing.assert_array_equal(a, x[i])
        assert a.dtype == np.float32 and b.dtype == np.int64 and int(b) == i


def test_from_tensor_slices_dict_and_single_array():
    x, y = xy(3)
    got = as_list(Dataset.from_tensor_slices({"x": x, "y": y}))
    assert [sorted(e) for e in got] == [["x", "y"]] * 3
    np.testing.assert_array_equal(got[2]["x"], x[2])
    assert [float(v) for v in Dataset.from_tensor_slices(np.array([1.5, 2.5]))] == [1.5, 2.5]


def test_from_tensor_slices_python_lists_typed_like_tf():
    # A Python list is one tensor (not a structure); Python floats -> float32, ints -> int32.
    floats = as_list(Dataset.from_tensor_slices([[1.0, 2.0], [3.0, 4.0]]))
    assert floats[0].dtype == np.float32 and floats[1].tolist() == [3.0, 4.0]
    assert as_list(Dataset.from_tensor_slices([1, 2, 3]))[0].dtype == np.int32
    text = np.array(["a", "bc"], dtype=object)  # e.g. a pandas string column
    assert [str(v) for v in Dataset.from_tensor_slices(text)] == ["a", "bc"]
    with pytest.raises(TypeError, match="Expected `tensors` to be a numpy array"):
        Dataset.from_tensor_slices(np.array([object()], dtype=object))


def test_from_tensor_slices_keeps_original_arrays_in_plan():
    x, y = xy(6)
    plan = Dataset.from_tensor_slices((x, y)).batch(4)._array_plan()
    assert plan.arrays[0] is x and plan.arrays[1] is y and plan.n == 6


def test_from_tensor_slices_errors():
    with pytest.raises(ValueError, match=r"same size in their first dimension.*\(3,\).*\(4,\)"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="at least one dimension"):
        Dataset.from_tensor_slices(np.float32(1.0))
    with pytest.raises(ValueError, match="ragged"):
        Dataset.from_tensor_slices([[1, 2], [3]])


def test_from_tensors_range_zip_concatenate():
    x, _ = xy(3)
    (only,) = as_list(Dataset.from_tensors((x, 1.0)))
    np.testing.assert_array_equal(only[0], x)
    assert only[1].dtype == np.float32
    assert ints(Dataset.range(5)) == [0, 1, 2, 3, 4]
    assert ints(Dataset.range(2, 9, 3)) == [2, 5, 8]
    assert ints(Dataset.range(5, 0, -2)) == [5, 3, 1]
    assert next(iter(Dataset.range(1))).dtype == np.int64
    a, b = Dataset.range(4), Dataset.range(10, 13)
    expected = [(0, 10), (1, 11), (2, 12)]  # zip stops at the shortest input
    assert [tuple(map(int, e)) for e in Dataset.zip((a, b))] == expected
    assert [tuple(map(int, e)) for e in Dataset.zip(a, b)] == expected
    assert [tuple(map(int, e)) for e in a.zip(b)] == expected
    d = as_list(Dataset.zip({"p": a, "q": b}))
    assert [(int(e["p"]), int(e["q"])) for e in d] == expected
    assert ints(a.concatenate(Dataset.range(7, 9))) == [0, 1, 2, 3, 7, 8]
    with pytest.raises(TypeError, match="concatenate"):
        a.concatenate(Dataset.from_tensor_slices(np.zeros(2, np.float32)))
    with pytest.raises(TypeError, match="dataset"):
        Dataset.zip((a, [1, 2]))


def test_from_generator_signature_args_and_reiteration():
    calls = []

    def gen(n):
        calls.append(int(n))
        for i in range(int(n)):
            yield [i] * 2, float(i)  # a list where the signature says a vector

    sig = (TensorSpec((2,), np.int64), TensorSpec((), np.float32))
    ds = Dataset.from_generator(gen, output_signature=sig, args=(3,))
    assert ds.element_spec == sig
    first = as_list(ds)
    assert [e[0].tolist() for e in first] == [[0, 0], [1, 1], [2, 2]]
    assert first[0][0].dtype == np.int64 and first[0][1].dtype == np.float32
    assert len(as_list(ds)) == 3 and calls == [3, 3]  # the generator is called per iteration
    assert ds.cardinality() == tfdata.UNKNOWN_CARDINALITY

    old = Dataset.from_generator(lambda: iter([(1, 2)]), output_types=(np.int32, np.int32))
    assert [tuple(map(int, e)) for e in old] == [(1, 2)]
    shaped = Dataset.from_generator(
        lambda: iter([np.zeros(3)]), output_types=np.float32, output_shapes=(None,)
    )
    assert shaped.element_spec == TensorSpec((None,), np.float32)


def test_from_generator_errors():
    with pytest.raises(TypeError, match=r"`generator` to be callable.*Received: generator=3"):
        Dataset.from_generator(3)
    bad = Dataset.from_generator(
        lambda: iter([np.zeros(2), np.zeros(3)]), output_signature=TensorSpec((2,), np.float64)
    )
    with pytest.raises(ValueError, match=r"shape \(3,\).*incompatible.*\(2,\)"):
        as_list(bad)


# --------------------------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------------------------


def test_batch_stacks_keeps_structure_and_remainder():
    x, y = xy(5)
    batches = as_list(Dataset.from_tensor_slices({"x": x, "y": y}).batch(2))
    assert [b["y"].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    np.testing.assert_array_equal(batches[1]["x"], x[2:4])
    dropped = as_list(Dataset.from_tensor_slices((x, y)).batch(2, drop_remainder=True))
    assert [b[1].tolist() for b in dropped] == [[0, 1], [2, 3]]
    # Generic (non-array) path: scalars stack to a vector.
    assert [b.tolist() for b in Dataset.range(5).batch(3)] == [[0, 1, 2], [3, 4]]
    accepted = Dataset.range(4).batch(2, num_parallel_calls=tfdata.AUTOTUNE, deterministic=True)
    assert len(as_list(accepted)) == 2


def test_batch_of_unequal_shapes_is_an_error():
    ds = Dataset.from_generator(lambda: iter([np.zeros(2), np.zeros(3)])).batch(2)
    with pytest.raises(ValueError, match="different shapes"):
        as_list(ds)


def test_unbatch_inverts_batch():
    x, y = xy(7)
    got = as_list(Dataset.from_tensor_slices((x, y)).batch(3).unbatch())
    assert [int(b) for _, b in got] == list(range(7))
    np.testing.assert_array_equal(np.stack([a for a, _ in got]), x)


def test_map_unpacks_tuples_and_passes_dicts():
    x, y = xy(4)
    seen = []

    def f(a, b):
        seen.append((type(a), type(b)))
        return a * 2, b + 1

    got = as_list(Dataset.from_tensor_slices((x, y)).batch(2).map(f, num_parallel_calls=-1))
    np.testing.assert_array_equal(got[0][0], x[:2] * 2)
    assert got[1][1].tolist() == [3, 4]
    assert all(t == (np.ndarray, np.ndarray) for t in seen)
    d = as_list(Dataset.from_tensor_slices({"x": x, "y": y}).map(lambda e: e["y"] * 10))
    assert [int(v) for v in d] == [0, 10, 20, 30]
    # A returned list is a tuple; a Python float becomes float32 (as TF converts it).
    lst = as_list(Dataset.range(2).map(lambda i: [i, 0.5]))
    assert isinstance(lst[0], tuple) and lst[0][1].dtype == np.float32
    with pytest.raises(TypeError, match=r"`map_func` to be callable.*Received: map_func=1"):
        Dataset.range(3).map(1)


def test_filter_take_skip_shard_enumerate_reduce():
    r = Dataset.range(10)
    assert ints(r.filter(lambda v: v % 3 == 0)) == [0, 3, 6, 9]
    assert ints(r.take(3)) == [0, 1, 2] and ints(r.take(-1)) == list(range(10))
    assert ints(r.skip(7)) == [7, 8, 9] and ints(r.skip(-1)) == []
    assert ints(r.shard(3, 1)) == [1, 4, 7]
    assert [(int(i), int(v)) for i, v in Dataset.range(5, 7).enumerate(1)] == [(1, 5), (2, 6)]
    assert int(r.reduce(np.int64(0), lambda s, v: s + v)) == 45
    with pytest.raises(TypeError, match="predicate"):
        r.filter("no")
    with pytest.raises(ValueError, match=r"scalar boolean"):
        as_list(r.batch(2).filter(lambda v: v > 0))


def test_repeat_counts_and_infinite():
    r = Dataset.range(3)
    assert ints(r.repeat(2)) == [0, 1, 2, 0, 1, 2]
    assert ints(r.repeat(0)) == []
    assert ints(r.repeat().take(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert ints(r.repeat(-1).take(4)) == [0, 1, 2, 0]
    # Repeating an empty dataset forever ends (TF's repeat stops on an empty input).
    assert ints(Dataset.range(0).repeat()) == []


def test_cache_freezes_an_upstream_shuffle():
    ds = Dataset.range(20).shuffle(20, seed=3).cache()
    first, second = ints(ds), ints(ds)
    assert first == second and sorted(first) == list(range(20))
    # Array-backed variant (index path), and shuffle after cache still reshuffles.
    x, _ = xy(20)
    frozen = Dataset.from_tensor_slices(x).shuffle(20, seed=3).cache()
    assert [a.tolist() for a in frozen] == [a.tolist() for a in frozen]
    live = Dataset.from_tensor_slices(np.arange(50)).cache().shuffle(50, seed=1)
    assert ints(live) != ints(live)


def test_prefetch_options_and_constants():
    r = Dataset.range(4)
    assert ints(r.prefetch(tfdata.AUTOTUNE)) == [0, 1, 2, 3]
    assert tfdata.AUTOTUNE == tfdata.experimental.AUTOTUNE == -1
    assert tfdata.INFINITE_CARDINALITY == tfdata.experimental.INFINITE_CARDINALITY == -1
    assert tfdata.UNKNOWN_CARDINALITY == tfdata.experimental.UNKNOWN_CARDINALITY == -2
    opts = tfdata.Options()
    opts.experimental_distribute.auto_shard_policy = tfdata.experimental.AutoShardPolicy.DATA
    opts.deterministic = False
    with_opts = r.with_options(opts)
    assert ints(with_opts) == [0, 1, 2, 3] and with_opts.options() is opts
    assert isinstance(r.options(), tfdata.Options)


def test_iterator_protocol():
    x, y = xy(3)
    it = iter(Dataset.from_tensor_slices((x, y)))
    a, b = next(it)
    assert int(b) == 0
    assert int(it.get_next()[1]) == 1
    assert [int(b) for _, b in it] == [2]
    assert int(Dataset.range(9, 10).get_single_element()) == 9


# --------------------------------------------------------------------------------------------
# Shuffle
# --------------------------------------------------------------------------------------------


def test_shuffle_buffer_one_is_identity():
    assert ints(Dataset.range(30).shuffle(1, seed=5)) == list(range(30))
    x = np.arange(30)
    assert ints(Dataset.from_tensor_slices(x).shuffle(1, seed=5)) == list(range(30))


def test_shuffle_full_buffer_is_a_uniform_permutation():
    got = ints(Dataset.range(100).shuffle(1000, seed=0))
    assert sorted(got) == list(range(100)) and got != list(range(100))
    # Uniformity of the first element over many seeds: 5 elements, 2000 draws, each ~400.
    counts = collections.Counter(
        int(next(iter(Dataset.from_tensor_slices(np.arange(5)).shuffle(5, seed=s))))
        for s in range(2000)
    )
    assert set(counts) == set(range(5)) and all(320 < c < 480 for c in counts.values())


@pytest.mark.parametrize("source", ["arrays", "generator"])
def test_shuffle_small_buffer_only_mixes_nearby(source):
    n, buf = 200, 8
    slack = []  # position - (i - buf + 1) of each element, over several seeds
    for seed in range(10):
        if source == "arrays":
            ds = Dataset.from_tensor_slices(np.arange(n)).shuffle(buf, seed=seed)
        else:
            ds = Dataset.from_generator(lambda: iter(range(n))).shuffle(buf, seed=seed)
        order = ints(ds)
        assert sorted(order) == list(range(n)) and order != list(range(n))
        pos = np.empty(n, dtype=np.int64)
        pos[order] = np.arange(n)
        slack.extend(pos - (np.arange(n) - buf + 1))
    # Element i is never emitted before position i - buffer_size + 1 ...
    assert min(slack) == 0  # ... and that bound is reached: the buffer really holds 8.


def test_shuffle_same_order_on_array_and_generic_paths():
    # The array path shuffles an index array; the generic path shuffles the element stream:
    # same draws, so the same order (for a full and for a small buffer).
    for buf in (3, 50, 100):
        a = ints(Dataset.from_tensor_slices(np.arange(50)).shuffle(buf, seed=11))
        b = ints(Dataset.range(50).shuffle(buf, seed=11))
        assert a == b


def test_reshuffle_each_iteration():
    ds = Dataset.from_tensor_slices(np.arange(40)).shuffle(40, seed=2)
    e1, e2 = ints(ds), ints(ds)
    assert e1 != e2 and sorted(e1) == sorted(e2) == list(range(40))
    fixed = Dataset.from_tensor_slices(np.arange(40)).shuffle(
        40, seed=2, reshuffle_each_iteration=False
    )
    assert ints(fixed) == ints(fixed)
    # shuffle().repeat(2): each pass is its own permutation, and the two differ.
    both = ints(Dataset.from_tensor_slices(np.arange(40)).shuffle(40, seed=2).repeat(2))
    assert sorted(both[:40]) == sorted(both[40:]) == list(range(40)) and both[:40] != both[40:]


def test_shuffle_seed_reproducibility():
    def build(seed=None):
        return Dataset.from_tensor_slices(np.arange(64)).shuffle(64, seed=seed)

    a, b = build(seed=9), build(seed=9)
    assert [ints(a), ints(a)] == [ints(b), ints(b)]  # same sequence of epochs
    _random.set_seed(123)
    c = build()
    _random.set_seed(123)
    d = build()
    assert ints(c) == ints(d)
    _random._reset()
    assert ints(build()) != ints(build())  # unseeded without a global seed: fresh entropy


def test_shuffle_errors():
    with pytest.raises(ValueError, match=r"`buffer_size`.*positive.*Received: buffer_size=0"):
        Dataset.range(3).shuffle(0)
    with pytest.raises(ValueError, match=r"`seed`.*Received: seed=-1"):
        Dataset.range(3).shuffle(2, seed=-1)


# --------------------------------------------------------------------------------------------
# Cardinality, len, element_spec
# --------------------------------------------------------------------------------------------


def test_cardinality_and_len():
    x, y = xy(10)
    base = Dataset.from_tensor_slices((x, y))
    cases = [
        (base, 10),
        (base.batch(3), 4),
        (base.batch(3, drop_remainder=True), 3),
        (base.repeat(3).batch(4), 8),  # ceil(30 / 4)
        (base.take(4), 4),
        (base.skip(4), 6),
        (base.skip(40), 0),
        (base.shuffle(5).prefetch(2).cache(), 10),
        (base.map(lambda a, b: a), 10),
        (base.shard(3, 0), 4),
        (base.concatenate(base), 20),
        (Dataset.zip((base, Dataset.range(4))), 4),
        (base.repeat().take(25), 25),
    ]
    for ds, n in cases:
        assert ds.cardinality() == n and len(ds) == n
        assert tfdata.experimental.cardinality(ds) == n
    assert base.cardinality().numpy() == 10  # scripts call .numpy() on TF's tensor
    infinite = base.repeat()
    assert infinite.cardinality() == tfdata.INFINITE_CARDINALITY
    assert infinite.batch(4).cardinality() == tfdata.INFINITE_CARDINALITY
    with pytest.raises(TypeError, match="infinite"):
        len(infinite)
    for unknown in (base.filter(lambda a, b: True), base.batch(2).unbatch()):
        assert unknown.cardinality() == tfdata.UNKNOWN_CARDINALITY
        with pytest.raises(TypeError, match="unknown"):
            len(unknown)
    assert bool(infinite)  # __bool__ must not go through __len__


def test_element_spec():
    x, y = xy(5)
    base = Dataset.from_tensor_slices((x, y))
    sx, sy = base.element_spec
    assert sx.shape == (3,) and sx.dtype == np.float32 and sy.shape == () and sy.dtype == np.int64
    bx, _ = base.batch(2).element_spec
    assert bx.shape == (None, 3) and bx.shape.as_list() == [None, 3]
    dx, _ = base.batch(2, drop_remainder=True).element_spec
    assert dx.shape == (2, 3)
    assert base.batch(2).unbatch().element_spec == base.element_spec
    mapped = base.batch(2).map(lambda a, b: {"f": a[:, :2], "y": b})
    assert mapped.element_spec == {
        "f": TensorSpec((None, 2), np.float32),
        "y": TensorSpec((None,), np.int64),
    }
    assert Dataset.range(3).element_spec == TensorSpec((), np.int64)
    assert "TensorSpec(shape=(None, 3)" in repr(base.batch(2))
    # Reading a map's element_spec runs the pipeline once, but must not advance the shuffle.
    a = Dataset.from_tensor_slices(np.arange(30)).shuffle(30, seed=4)
    b = Dataset.from_tensor_slices(np.arange(30)).shuffle(30, seed=4)
    _ = a.map(lambda v: v + 1).element_spec
    assert ints(a) == ints(b)


def test_argument_errors_name_argument_and_value():
    r = Dataset.range(5)
    for bad in (0, -2, 1.5, True, "8"):
        with pytest.raises(ValueError, match=rf"`batch_size`.*positive.*batch_size={bad!r}"):
            r.batch(bad)
    with pytest.raises(ValueError, match=r"`count`.*Received: count=-2"):
        r.take(-2)
    with pytest.raises(ValueError, match=r"`count`.*Received: count=-3"):
        r.repeat(-3)
    with pytest.raises(ValueError, match=r"`index`.*Received: index=3"):
        r.shard(3, 3)
    with pytest.raises(ValueError, match="num_parallel_calls"):
        r.map(lambda v: v, num_parallel_calls=0)
    with pytest.raises(ValueError, match="buffer_size"):
        r.prefetch(-5)


# --------------------------------------------------------------------------------------------
# The array plan (fit's fast path) equals ordinary iteration
# --------------------------------------------------------------------------------------------

N, BS = 23, 5

PIPELINES = {
    # name: (builder, batch_after_repeat, repeat)
    "batch": (lambda d: d.batch(BS), False, 1),
    "batch_drop": (lambda d: d.batch(BS, drop_remainder=True), False, 1),
    "shuffle_batch": (lambda d: d.shuffle(N, seed=1).batch(BS), False, 1),
    "small_shuffle_batch_prefetch": (
        lambda d: d.shuffle(4, seed=1).batch(BS).prefetch(tfdata.AUTOTUNE),
        False,
        1,
    ),
    "shuffle_repeat_batch": (lambda d: d.shuffle(N, seed=2).repeat().batch(BS), True, None),
    "shuffle_repeat3_batch": (lambda d: d.shuffle(N, seed=2).repeat(3).batch(BS), True, 3),
    "shuffle_batch_repeat": (lambda d: d.shuffle(N, seed=3).batch(BS).repeat(), False, None),
    "shuffle_batch_repeat2_drop": (
        lambda d: d.shuffle(N, seed=3).batch(BS, drop_remainder=True).repeat(2),
        False,
        2,
    ),
    "cache_shuffle_batch": (lambda d: d.cache().shuffle(N, seed=4).batch(BS), False, 1),
    "shuffle_cache_batch": (lambda d: d.shuffle(N, seed=4).cache().batch(BS), False, 1),
    "shuffle_batch_cache_repeat": (
        lambda d: d.shuffle(10, seed=5).batch(BS).cache().repeat(2),
        False,
        2,
    ),
    "no_reshuffle_repeat_batch": (
        lambda d: d.shuffle(N, seed=6, reshuffle_each_iteration=False).repeat(2).batch(BS),
        True,
        2,
    ),
    "repeat_batch_drop_unshuffled": (lambda d: d.repeat(2).batch(BS, drop_remainder=True), True, 2),
}


def _arrays():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, 3)).astype(np.float32), np.arange(N, dtype=np.int64)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_array_plan_matches_iteration(name):
    build, after, reps = PIPELINES[name]
    x, y = _arrays()
    via_iter = build(Dataset.from_tensor_slices((x, y)))
    via_plan = build(Dataset.from_tensor_slices((x, y)))
    plan = via_plan._array_plan()
    assert plan is not None
    assert (plan.batch_size, plan.batch_after_repeat, plan.repeat, plan.n) == (BS, after, reps, N)
    assert plan.drop_remainder == ("drop" in name)
    assert plan.arrays[0] is x and plan.arrays[1] is y
    limit = 3 * N // BS + 2  # enough batches to cross several pass boundaries
    for _epoch in range(3):  # successive iterations (epochs) must match too
        got = list(itertools.islice(iter(via_iter), limit))
        want = list(itertools.islice(plan_batches(plan), limit))
        assert len(got) == len(want) > 0
        for (bx, by), idx in zip(got, want):
            assert idx.dtype == np.int64
            np.testing.assert_array_equal(by, y[idx])
            np.testing.assert_array_equal(bx, x[idx])


def test_array_plan_passes_hand_checked():
    x, y = _arrays()

    def build():
        return Dataset.from_tensor_slices((x, y)).shuffle(N, seed=7).repeat(2).batch(BS)

    plan = build()._array_plan()
    passes = list(plan.passes())
    assert len(passes) == 2 and all(sorted(p.tolist()) == list(range(N)) for p in passes)
    assert passes[0].tolist() != passes[1].tolist()  # reshuffled per pass
    # Each call of passes() is a new iteration, hence a new order; the same seed replays it.
    assert list(plan.passes())[0].tolist() != passes[0].tolist()
    batches = list(plan_batches(build()._array_plan()))
    # 2 * 23 = 46 indices across the pass boundary: 9 batches of 5, then one of 1.
    assert [len(b) for b in batches] == [5] * 9 + [1]
    np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(passes))
    per_pass = Dataset.from_tensor_slices((x, y)).batch(BS).repeat(2)._array_plan()
    # Per-pass batching: 23 = 4 * 5 + 3, twice; rows in order.
    sizes = [len(b) for b in plan_batches(per_pass)]
    assert sizes == [5, 5, 5, 5, 3] * 2
    assert np.concatenate(list(plan_batches(per_pass))).tolist() == list(range(N)) * 2


def test_array_plan_absent_for_unsupported_pipelines():
    x, y = _arrays()
    base = Dataset.from_tensor_slices((x, y))
    unsupported = [
        base,  # no batch
        base.shuffle(8),  # no batch
        base.map(lambda a, b: (a, b)).batch(4),
        base.batch(4).map(lambda a, b: (a, b)),
        base.filter(lambda a, b: True).batch(4),
        base.take(5).batch(4),
        base.batch(4).take(2),
        base.repeat(2).shuffle(8).batch(4),  # a shuffle across passes
        base.batch(4).unbatch().batch(4),
        base.batch(2).batch(2),
        base.repeat(2).batch(4).repeat(2),  # batches span pairs of passes only
        base.concatenate(base).batch(4),
        Dataset.range(10).batch(4),
    ]
    for ds in unsupported:
        assert ds._array_plan() is None, ds
