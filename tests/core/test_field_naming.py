"""The field naming rule (core.schema): a plugin field never takes an input field's name, and the
readers find the field the last run wrote."""
from hypothesis import given, strategies as st

from mine_clusters.core.schema import FEATURE_FIELDS, input_name, output_name


def test_a_free_name_is_kept_and_a_taken_one_prefixed():
    assert output_name("area_m2", ["polygon_id", "sources"]) == "area_m2"
    assert output_name("area_m2", ["polygon_id", "AREA_M2"]) == "mc_area_m2"  # case-insensitive
    assert output_name("area_m2", ["area_m2", "mc_area_m2"]) == "mc2_area_m2"
    assert output_name("area_m2", ["area_m2", "mc_area_m2", "MC2_area_m2"]) == "mc3_area_m2"


def test_the_reader_takes_the_most_recent_run_s_field():
    assert input_name("status", ["status"]) == "status"
    assert input_name("status", ["Status"]) == "Status"
    assert input_name("status", ["status", "mc_status"]) == "mc_status"
    assert input_name("status", ["status", "mc_status", "mc2_status"]) == "mc2_status"
    assert input_name("status", ["mc_status"]) == "mc_status"
    assert input_name("status", ["cluster_id", "mcx_status", "mc1_status"]) is None
    # a user's own mc2_status before the plugin's mc_status: the later one is the plugin's
    assert input_name("status", ["status", "mc2_status", "mc_status"]) == "mc_status"


#: input field names that meet the plugin's: its own names, prefixed ones (a gap included), case
names = st.sampled_from([v for n, _k in FEATURE_FIELDS
                         for v in (n, n.upper(), f"mc_{n}", f"MC2_{n}", f"mc3_{n}", f"x_{n}")])


@given(st.lists(names, max_size=10, unique_by=str.casefold), st.integers(1, 4))
def test_runs_on_runs_never_overwrite_and_read_back_the_last(inputs, runs):
    """Run the writer `runs` times on its own output: every run adds each plugin field under a
    new name, and the reader then finds the last run's."""
    fields = list(inputs)
    for _ in range(runs):
        added = {}
        for name, _kind in FEATURE_FIELDS:
            out = output_name(name, fields)
            assert out.casefold() not in {f.casefold() for f in fields}
            added[name] = out
            fields.append(out)
        for name, out in added.items():
            assert input_name(name, fields) == out
