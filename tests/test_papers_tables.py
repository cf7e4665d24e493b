"""papers_tables/*.csv and their loader ugs.papers.

Every expected number below was read off the paper by hand when the tables were typed; the
tests do not read the paper itself (the kit must not depend on it).
"""
import csv
import math
import shutil

import pytest

from ugs.papers import (
    REQUIRED_COLUMNS, check_text_claims, default_root, list_tables, load_table, load_text_claims,
    read_table, write_table,
)

TABLES = ["figure6", "table1_visdrone", "table2_visdrone_yolo", "table3_soda_a", "table4_voc_coco",
          "table5_training_cost", "table6_ablation", "table7_grid_parameters"]

# name: (printed rows, metric columns), counted by hand from the paper
SHAPES = {
    # 4 reference rows (QueryDet, DetectoRS, CZDet, DQ-DETR) + 5 baselines + 5 "w/ UGS"
    # + GFL V1 "w/ CEASC" = 15 rows; AP, AP50, AP_s, AP_m, AP_l
    "table1_visdrone": (15, 5),
    # TPH-YOLOv5-x and w/ UGS at 640 and at 1536; AP, AP_s, AP_m
    "table2_visdrone_yolo": (4, 3),
    # 4 rotated detectors x (baseline, w/ UGS); AP, AP_0.5, AP_0.75, AP_eS, AP_rS, AP_gS, AP_N
    "table3_soda_a": (8, 7),
    # {R-50, R-101} x {VOC, COCO} x {baseline, w/ UGS}; AP, AP_s
    "table4_voc_coco": (8, 2),
    # FCOS and w/ UGS; AP, Time (s/batch), GFLOPs, Params (M)
    "table5_training_cost": (2, 4),
    # 5 existing methods + L_CE + L_CE+IN + 3 lambda rows + 3 UR rows; AP, AP50, AP_s
    "table6_ablation": (13, 3),
    # RPN: 4 alpha-beta + 4 grid-number lines; R-CNN: 4 alpha-beta + 3 grid-number lines
    "table7_grid_parameters": (15, 3),
    # Fig. 6 caption, Sec. 4.6 and Sec. 3.2.3 each print the ratio once
    "figure6": (3, 1),
}

# The text claims that disagree with the tables (checked by hand, see papers_tables/README.md).
MISMATCHES = {
    "s4_2_faster_rcnn_ap",    # text +2.6 AP, Table 1 21.3 -> 24.2 = +2.9
    "s4_2_faster_rcnn_aps",   # text +1.5 AP_s, Table 1 12.8 -> 15.8 = +3.0
    "s4_2_gfl_ap",            # text +3.5 AP, Table 1 28.4 -> 31.2 = +2.8
    "s3_2_3_variance_ratio",  # Sec. 3.2.3 2.5x, Fig. 6 / Sec. 4.6 2.9x
    "s4_8_in_ap",             # "further" +1.2 AP over L_CE; Table 6 22.1 -> 22.5 = +0.4
    "s4_8_in_aps",            # "further" +0.6 AP_s over L_CE; Table 6 13.2 -> 13.4 = +0.2
}

GOOD_LINES = [
    "row,method,variant,column,value,status,source,derivation,year",
    "fcos,FCOS,baseline,AP,19.9,printed,Table 1,,2019",
    "fcos,FCOS,baseline,AP_s,11.4,printed,Table 1,,2019",
]


def test_list_tables_finds_every_table_file():
    # seven tables and Fig. 6; text_claims.csv is not a table
    assert list_tables() == TABLES


@pytest.mark.parametrize("name", TABLES)
def test_table_file_loads_with_required_columns(name):
    # the header starts with the eight schema columns, in order
    table = load_table(name)
    with open(table.path, encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert tuple(header[:8]) == REQUIRED_COLUMNS
    assert table.records and table.name == name


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_table_has_rows_times_columns_of_the_paper(name):
    # every printed row has one line per metric column, '-' cells included
    n_rows, n_cols = SHAPES[name]
    table = load_table(name)
    assert len(table.rows()) == n_rows
    assert len(table.columns()) == n_cols
    assert len(table.records) == n_rows * n_cols


def test_load_table_accepts_number_short_name_stem_and_path():
    # 1, "table1", "table1_visdrone" and the file path name the same file
    by_number = load_table(1)
    assert load_table("table1").path == by_number.path
    assert load_table("table1_visdrone").path == by_number.path
    assert load_table(by_number.path).records == by_number.records
    assert load_table("figure6").name == "figure6"


def test_load_table_unknown_name_lists_what_exists():
    # a typo gets the list of available tables
    with pytest.raises(FileNotFoundError, match="table1_visdrone"):
        load_table("table9")


def test_root_argument_overrides_the_folder(tmp_path):
    # a copy in another folder is found there, not in the repo
    shutil.copy(default_root() / "table5_training_cost.csv", tmp_path / "table5_custom.csv")
    table = load_table(5, root=tmp_path)
    assert table.path.parent == tmp_path
    assert list_tables(tmp_path) == ["table5_custom"]


@pytest.mark.parametrize("table, row, column, expected", [
    ("table1", "dino_5scale_ugs", "AP", 38.1),           # Table 1, DINO-5scale w/ UGS
    ("table1", "gfl_v1_ugs", "AP_l", 54.4),              # Table 1, GFL V1 w/ UGS
    ("table1", "faster_rcnn", "AP50", 36.4),             # Table 1, Faster R-CNN
    ("table1", "dq_detr", "AP50", 60.9),                 # Table 1, DQ-DETR
    ("table2", "tph_yolov5_x_640_ugs", "AP_s", 16.7),    # Table 2, w/ UGS at 640
    ("table3", "rotated_fcos", "AP_N", 41.6),            # Table 3, Rotated FCOS
    ("table3", "oriented_rcnn_ugs", "AP_gS", 47.8),      # Table 3, Oriented RCNN w/ UGS
    ("table4", "faster_rcnn_r101_coco_ugs", "AP_s", 24.9),
    ("table5", "fcos", "time_s_per_batch", 0.151),       # Table 5, FCOS
    ("table5", "fcos_ugs", "params_M", 48.12),           # Table 5, w/ UGS
    ("table6", "bayesian_yolo", "AP", 22.0),             # Table 6, Bayesian YOLO
    ("table6", "ce_in_um_l1.0", "AP_s", 13.7),           # Table 6, lambda = 1.0
    ("table7", "rcnn_grid_n20", "AP50", 37.9),           # Table 7, R-CNN n = 20
    ("table7", "rpn_ab_a3_b1.5", "AP", 21.7),            # Table 7, RPN alpha 3 beta 1.5
    ("figure6", "fig6_caption", "variance_ratio", 2.9),  # Fig. 6 caption
])
def test_spot_values_match_the_paper(table, row, column, expected):
    # values read off the paper by hand
    assert load_table(table).value(row, column) == pytest.approx(expected)


def test_dash_cells_are_none_and_not_reported():
    # Table 1 prints '-' for AP_s/AP_m/AP_l of the four references and of CEASC: 5 x 3 = 15
    t1 = load_table(1)
    assert t1.value("querydet", "AP_s") is None
    dashes = [r for r in t1.records if r["status"] == "not_reported"]
    assert len(dashes) == 15
    # Table 4 has no AP_s for the four VOC rows
    t4 = load_table(4)
    assert {r["row"] for r in t4.records if r["value"] is None} == {
        "faster_rcnn_r50_voc", "faster_rcnn_r50_voc_ugs", "faster_rcnn_r101_voc",
        "faster_rcnn_r101_voc_ugs"}


def test_derived_values_carry_a_derivation_and_only_table4_has_them():
    # the three Table 4 values Sec. 4.4 gives but no table cell prints: 78.4 + 3.8,
    # 37.4 + 1.5, 21.2 + 1.4
    derived = {}
    for name in TABLES:
        for r in load_table(name).records:
            if r["status"] == "derived":
                assert r["derivation"].strip()
                derived[(name, r["row"], r["column"])] = r["value"]
            else:
                assert r["derivation"] == ""
    assert derived == pytest.approx({
        ("table4_voc_coco", "faster_rcnn_r50_voc_ugs", "AP"): 82.2,
        ("table4_voc_coco", "faster_rcnn_r50_coco_ugs", "AP"): 38.9,
        ("table4_voc_coco", "faster_rcnn_r50_coco_ugs", "AP_s"): 22.6,
    })


def test_table4_rows_read_with_section_4_4():
    # the printed 81.7 is R-101 VOC w/ UGS (79.9 + 1.8), 39.4 / 22.4 the R-101 COCO baseline
    t4 = load_table(4)
    assert t4.record("faster_rcnn_r101_voc_ugs", "AP")["status"] == "printed"
    assert t4.value("faster_rcnn_r101_voc_ugs", "AP") == pytest.approx(81.7)
    assert t4.value("faster_rcnn_r101_coco", "AP") == pytest.approx(39.4)
    assert t4.value("faster_rcnn_r101_coco", "AP_s") == pytest.approx(22.4)
    assert t4.record("faster_rcnn_r50_coco", "AP")["dataset"] == "COCO"


def test_table6_best_row_is_lambda_gamma_rho_one_half():
    # 24.2 / 41.3 / 15.8 at lambda = gamma = rho = 0.5 with IN labels
    t6 = load_table(6)
    best = max(t6.select(column="AP"), key=lambda r: r["value"])
    assert best["row"] == "ce_in_um_ur_l0.5_g0.5_r0.5"
    assert (best["lambda"], best["gamma"], best["rho"], best["IN"]) == ("0.5", "0.5", "0.5", "yes")
    assert t6.value(best["row"], "AP50") == pytest.approx(41.3)


def test_table7_grid_rows_use_the_stage_best_alpha_beta_with_a_note():
    # Grid Number lines print no alpha/beta: RPN 2 / 1.0, R-CNN 5 / 1.0, said in `note`
    t7 = load_table(7)
    for r in t7.select(parameter="grid number"):
        expected = ("2", "1.0") if r["stage"] == "RPN" else ("5", "1.0")
        assert (r["alpha"], r["beta"]) == expected
        assert "alpha/beta are not printed per line" in r["note"]
    # the same metric may be looked up by settings instead of the row id
    assert t7.value("rpn_grid_n4", "AP", stage="RPN", n=4) == pytest.approx(21.9)


def test_figure6_keeps_both_printed_ratios_and_reports_the_disagreement():
    # 2.9x (Fig. 6 caption, Sec. 4.6) and 2.5x (Sec. 3.2.3) for the same quantity
    f6 = load_table("figure6")
    assert sorted(r["value"] for r in f6.records) == pytest.approx([2.5, 2.9, 2.9])
    results = {c.claim: c for c in check_text_claims()}
    assert not results["s3_2_3_variance_ratio"].agrees
    assert results["s3_2_3_variance_ratio"].diff == pytest.approx(0.4)
    assert results["s4_6_variance_ratio"].agrees


def test_text_claim_mismatches_are_exactly_those_marked_mismatch():
    # a new inconsistency, or a silently "fixed" one, changes one of these sets
    results = check_text_claims()
    found = {c.claim for c in results if not c.agrees}
    marked = {c.claim for c in results if c.expected == "mismatch"}
    assert found == marked == MISMATCHES
    assert all(c.as_expected for c in results)


def test_text_claims_file_has_53_claims_with_17_cross_table_identities():
    # 36 quoted numbers + 17 `same` identities (3 + 3 + 2 + 3 + 3 + 3)
    claims = load_text_claims()
    assert len(claims) == 53
    assert sum(c["kind"] == "same" for c in claims) == 17


@pytest.mark.parametrize("claim, computed", [
    ("s4_2_faster_rcnn_ap", 2.9),    # 24.2 - 21.3
    ("s4_2_faster_rcnn_aps", 3.0),   # 15.8 - 12.8
    ("s4_2_gfl_ap", 2.8),            # 31.2 - 28.4
    ("s4_8_in_ap", 0.4),             # 22.5 - 22.1
    ("s4_8_in_aps", 0.2),            # 13.4 - 13.2
    ("s4_2_cascade_aps", 2.7),       # 15.8 - 13.1
    ("s4_3_rotated_retinanet_ap", 4.5),  # 26.8 - 22.3
    ("s4_8_table7_best_ap", 1.2),    # Table 7 22.5 - Table 6 21.3
    ("s4_5_time_pct", 100 * (0.174 / 0.151 - 1)),      # 15.23 %
    ("s4_5_gflops_pct", 100 * (128.06 / 127.25 - 1)),  # 0.64 %
    ("s4_5_memory_pct", 100 * (48.12 / 42.40 - 1)),    # 13.49 %, printed as params
])
def test_claim_values_are_recomputed_from_the_tables(claim, computed):
    # deltas in points, ratio_pct as (to / from - 1) * 100, worked out by hand
    result = {c.claim: c for c in check_text_claims()}[claim]
    assert result.computed == pytest.approx(computed)


def test_claim_tolerance_is_half_a_unit_of_the_quoted_last_digit():
    # "2.5" -> 0.05 (the usual one-decimal points); "15" (Sec. 4.5) -> 0.5, so 15.2 % agrees
    results = {c.claim: c for c in check_text_claims()}
    assert results["s4_2_fcos_ap"].tolerance == pytest.approx(0.05)
    assert results["s4_5_time_pct"].tolerance == pytest.approx(0.5)
    assert results["s4_5_time_pct"].agrees
    assert results["same_t5_t1_fcos_ap"].tolerance < 1e-6


def test_cross_table_identities_hold():
    # Table 6 L2 row = Table 1 Faster R-CNN, Table 6 best = Faster R-CNN w/ UGS, Table 5 AP =
    # Table 1 FCOS, Table 7 R-CNN best = Table 6 L_CE + IN, Table 7 grid lines = alpha-beta best
    same = [c for c in check_text_claims() if c.kind == "same"]
    assert len(same) == 17
    assert all(c.agrees and c.computed == 0 for c in same)


def test_missing_value_raises_keyerror_naming_file_row_and_column():
    # the message says which file, row and column were asked for
    with pytest.raises(KeyError, match=r"table1_visdrone\.csv.*'nope'.*'AP'"):
        load_table(1).value("nope", "AP")
    with pytest.raises(KeyError, match=r"'fcos'.*'AP_x'"):
        load_table(1).value("fcos", "AP_x")


@pytest.mark.parametrize("bad_line, line_no, message", [
    ("fcos,FCOS,baseline,AP_m,30.7,typed,Table 1,,2019", 4, "status 'typed'"),
    ("fcos,FCOS,baseline,AP_m,,printed,Table 1,,2019", 4, "empty exactly when"),
    ("fcos,FCOS,baseline,AP_m,30.7,not_reported,Table 1,,2019", 4, "empty exactly when"),
    ("fcos,FCOS,baseline,AP_m,3O.7,printed,Table 1,,2019", 4, "not a number"),
    ("fcos,FCOS,baseline,AP_m,30.7,derived,Table 1,,2019", 4, "derivation"),
    ("fcos,FCOS,baseline,AP,19.9,printed,Table 1,,2019", 4, "duplicate of line 2"),
    ("fcos,FCOS,baseline,AP_m,30.7,printed,Table 1,,2019,extra", 4, "wrong number of fields"),
])
def test_bad_csv_error_names_file_and_line(tmp_path, bad_line, line_no, message):
    # one defect appended after two good lines: the error points at line 4 of that file
    path = tmp_path / "table_bad.csv"
    path.write_text("\n".join(GOOD_LINES + [bad_line]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_table(path)
    assert "table_bad.csv" in str(err.value)
    assert f"line {line_no}" in str(err.value)
    assert message in str(err.value)


def test_missing_header_column_is_reported_on_line_1(tmp_path):
    # no `status` column at all
    path = tmp_path / "table_nostatus.csv"
    path.write_text("row,method,variant,column,value,source,derivation\n"
                    "fcos,FCOS,baseline,AP,19.9,Table 1,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"table_nostatus\.csv, line 1: .*status"):
        read_table(path)


def test_same_key_with_different_settings_is_allowed(tmp_path):
    # (row, column) may repeat when a setting column differs, e.g. two seeds
    path = tmp_path / "measured.csv"
    path.write_text("row,method,variant,column,value,status,source,derivation,seed\n"
                    "fcos,FCOS,baseline,AP,19.1,measured,train.py seed 0,,0\n"
                    "fcos,FCOS,baseline,AP,19.5,measured,train.py seed 1,,1\n", encoding="utf-8")
    table = read_table(path)
    assert table.value("fcos", "AP", seed=1) == pytest.approx(19.5)
    with pytest.raises(ValueError, match="2 records"):
        table.value("fcos", "AP")


def test_bad_claims_file_error_names_line(tmp_path):
    # an unknown kind on the second claim line (line 3 of text_claims.csv)
    src = (default_root() / "text_claims.csv").read_text(encoding="utf-8").splitlines()
    fields = next(csv.reader([src[2]]))
    fields[7] = "delta_pct"  # the `kind` column
    lines = [src[0], src[1], ",".join(f'"{f}"' for f in fields)]
    (tmp_path / "text_claims.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"text_claims\.csv, line 3: kind 'delta_pct'"):
        load_text_claims(tmp_path)


@pytest.mark.parametrize("name", TABLES)
def test_write_table_then_load_round_trips(tmp_path, name):
    # every paper table survives write_table -> read_table unchanged (values and text)
    table = load_table(name)
    out = write_table(table.records, tmp_path / f"{name}.csv")
    again = read_table(out)
    assert again.records == table.records
    assert again.settings == table.settings


def test_write_table_stores_measured_results(tmp_path):
    # a kit result: status measured, source = the command; derivation may be left out
    record = dict(row="fcos_ugs", method="FCOS w/ UGS", variant="ugs", column="AP",
                  value=22.137, status="measured", seed="0",
                  source="python tools/train.py configs/ugs/fcos_r50_visdrone.py --seed 0")
    table = read_table(write_table([record], tmp_path / "results" / "measured.csv"))
    assert table.value("fcos_ugs", "AP") == pytest.approx(22.137)
    assert table.record("fcos_ugs", "AP")["derivation"] == ""
    assert table.settings == ("seed",)


def test_write_table_rejects_what_load_would_reject(tmp_path):
    # a measured record without a value is invalid; nothing is written
    record = dict(row="fcos", method="FCOS", variant="baseline", column="AP", value=None,
                  status="measured", source="cmd")
    path = tmp_path / "bad.csv"
    with pytest.raises(ValueError, match="line 2"):
        write_table([record], path)
    assert not path.exists()


def test_to_markdown_pivots_rows_by_metrics():
    # Table 1 FCOS rows, AP and AP_s: 19.9 / 11.4 and 22.4 / 13.0
    md = load_table(1).to_markdown(rows=["fcos", "fcos_ugs"], columns=["AP", "AP_s"])
    assert md.splitlines() == [
        "| row | method | AP | AP_s |",
        "|---|---|---:|---:|",
        "| fcos | FCOS | 19.9 | 11.4 |",
        "| fcos_ugs | FCOS w/ UGS | 22.4 | 13.0 |",
    ]
    # with a fixed number of decimals
    assert "| fcos | FCOS | 19.90 | 11.40 |" in load_table(1).to_markdown(
        rows=["fcos"], columns=["AP", "AP_s"], digits=2)


def test_to_markdown_marks_derived_and_dash_cells():
    # Table 4 R-50 VOC w/ UGS: AP 82.2 derived (*), AP_s '-'
    md = load_table(4).to_markdown(rows=["faster_rcnn_r50_voc_ugs"])
    assert "| faster_rcnn_r50_voc_ugs | Faster R-CNN w/ UGS | 82.2* | - |" in md
    assert "derived" in md.splitlines()[-1]


def test_every_value_is_finite_and_every_source_names_its_place():
    # sources start with the table, figure or section they come from
    for name in TABLES:
        for r in load_table(name).records:
            assert r["value"] is None or math.isfinite(r["value"])
            assert r["source"].startswith(("Table ", "Figure 6", "Sec. "))


def test_write_table_keeps_zero_settings(tmp_path):
    # a setting of 0 (e.g. seed=0) must be written as "0", not blanked
    from ugs.papers import read_table, write_table
    rec = dict(row="fcos", method="FCOS", variant="baseline", column="AP", value=1.5,
               status="measured", source="cmd", derivation="", seed=0, epochs=3)
    path = write_table([rec], tmp_path / "m.csv")
    back = read_table(path).records[0]
    assert back["seed"] == "0" and back["epochs"] == "3" and back["value"] == 1.5
