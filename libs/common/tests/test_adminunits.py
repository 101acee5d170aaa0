"""The admin-unit tree: data from the maintained package or a file, any depth."""
import json

from libs.common.adminunits import AdminTree, load_tree
from libs.common.auth import path_within


def test_ho_chi_minh_city_2021_has_22_districts_and_312_communes():
    tree = load_tree()
    assert tree.root.name == "Thành phố Hồ Chí Minh"
    assert tree.root.path == "79"
    assert len(tree.level(1)) == 22
    assert len(tree.level(2)) == 312
    can_gio = tree.get("79/787")
    assert can_gio.name == "Huyện Cần Giờ"
    assert "Thị trấn Cần Thạnh" in [c.name for c in can_gio.children]
    assert tree.label("79/787/27664") == "Thị trấn Cần Thạnh, Huyện Cần Giờ"


def test_within_and_ancestors():
    tree = load_tree()
    assert {u.path for u in tree.within("79/787")} >= {"79/787", "79/787/27664"}
    assert [u.path for u in tree.ancestors("79/787/27664")] == ["79", "79/787", "79/787/27664"]
    assert tree.by_code("27664").path == "79/787/27664"


def test_tree_of_another_depth_from_a_file(tmp_path):
    # After the 2025 merger: province > ward, no district level.
    path = tmp_path / "units.json"
    path.write_text(json.dumps({"code": 79, "name": "Thành phố Hồ Chí Minh", "children": [
        {"code": 26734, "name": "Phường Tân Định", "division_type": "phường"},
        {"code": 26740, "name": "Phường Sài Gòn", "division_type": "phường"},
    ]}), encoding="utf-8")
    tree = AdminTree.from_file(path)
    assert [u.path for u in tree.level(1)] == ["79/26740", "79/26734"]
    assert tree.get("79/26734").parent is tree.root


def test_path_within_respects_segment_boundaries():
    assert path_within("79/787/27664", "79/787")
    assert path_within("79/787", "79/787")
    assert not path_within("79/7870", "79/787")
    assert not path_within("79", "79/787")
