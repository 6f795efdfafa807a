import pytest

from server.plugins import optional_modules


def test_absent_feature_packages_are_skipped():
    found = list(optional_modules(["server.no_such_pkg.setup", "no_such_top.cli", "server.db"]))
    assert [m.__name__ for m in found] == ["server.db"]


def test_a_present_but_broken_module_fails_loudly(tmp_path, monkeypatch):
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("")
    (tmp_path / "brokenpkg" / "setup.py").write_text("import missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="missing_dependency_xyz"):
        list(optional_modules(["brokenpkg.setup"]))
