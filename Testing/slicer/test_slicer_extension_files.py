"""Static checks of the extension files: CMake lists name files that exist, the .ui panel is
well-formed with the widgets the module uses, the .s4ext has its fields, and the generated
resources (colour table, icon) match their sources. Needs neither Slicer nor slicer-core."""

import ast
import glob
import os
import re
import struct
import xml.etree.ElementTree as ElementTree

import pytest

from slicer_support import ROOT

MODULE_DIR = os.path.join(ROOT, "MedSegMamba")
UI = os.path.join(ROOT, "Resources", "UI", "MedSegMamba.ui")
S4EXT_FIELDS = ("scm", "scmurl", "scmrevision", "depends", "build_subdirectory", "homepage", "contributors",
                "category", "iconurl", "status", "description", "screenshoturls", "enabled")
PANEL_WIDGETS = {
    "inputVolumeSelector": "qMRMLNodeComboBox", "modelComboBox": "QComboBox", "modelPathLineEdit": "ctkPathLineEdit",
    "deviceComboBox": "QComboBox", "qualityComboBox": "QComboBox", "ttaCheckBox": "QCheckBox",
    "hippocampusCheckBox": "QCheckBox",
    "segmentButton": "QPushButton", "progressBar": "QProgressBar", "stageLabel": "QLabel",
    "cancelButton": "QPushButton", "show3DButton": "QPushButton", "exportButton": "QPushButton",
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def cmakeSetList(text, name):
    match = re.search(r"set\(\s*" + re.escape(name) + r"\s+(.*?)\)", text, re.S)
    assert match, f"set({name} ...) not found"
    return [t for t in match.group(1).split() if not t.startswith("#")]


def test_top_level_cmake_has_extension_metadata_and_includes():
    text = read(os.path.join(ROOT, "CMakeLists.txt"))
    for name in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                 "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(r"set\(\s*" + name + r'\s+"[^"]+"\s*\)', text), f"{name} missing or empty"
    assert re.search(r'EXTENSION_CATEGORY\s+"Segmentation"', text)
    assert re.search(r'EXTENSION_DEPENDS\s+"NA"', text)
    for line in ("project(MedSegMamba)", "find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})",
                 "add_subdirectory(MedSegMamba)", "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
                 "include(${Slicer_EXTENSION_CPACK})"):
        assert line in text, line


def test_module_cmake_lists_existing_files_and_every_module_script():
    text = read(os.path.join(MODULE_DIR, "CMakeLists.txt"))
    scripts = [s.replace("${MODULE_NAME}", "MedSegMamba") for s in cmakeSetList(text, "MODULE_PYTHON_SCRIPTS")]
    explicit = [s for s in scripts if not s.startswith("${")]
    for path in explicit:
        assert os.path.isfile(os.path.join(MODULE_DIR, path)), f"MedSegMamba/CMakeLists.txt names a missing file: {path}"
    # Every Python file of the module and its Lib is listed (the core package comes by glob).
    onDisk = {"MedSegMamba.py"} | {os.path.relpath(p, MODULE_DIR) for p in glob.glob(os.path.join(MODULE_DIR, "MedSegMambaLib", "*.py"))}
    assert onDisk <= set(explicit), f"not listed in CMake: {sorted(onDisk - set(explicit))}"
    # The glob for the core package matches its files.
    assert "${MEDSEGMAMBA_PACKAGE_SCRIPTS}" in scripts
    assert "${CMAKE_CURRENT_SOURCE_DIR}/medsegmamba/*.py" in text
    assert glob.glob(os.path.join(MODULE_DIR, "medsegmamba", "**", "*.py"), recursive=True)
    resources = [r.replace("${MODULE_NAME}", "MedSegMamba") for r in cmakeSetList(text, "MODULE_TOP_LEVEL_RESOURCES")]
    assert len(resources) == 3
    for path in resources:
        assert os.path.isfile(os.path.join(ROOT, "Resources", path)), f"missing resource: Resources/{path}"
    assert "slicerMacroBuildScriptedModule(" in text
    assert re.search(r"slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py\s*\)", text)


def test_s4ext_has_every_field():
    fields = {}
    for line in read(os.path.join(ROOT, "extension.s4ext")).splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
    for key in S4EXT_FIELDS:
        assert fields.get(key), f"extension.s4ext: field {key!r} is missing or empty"
    assert fields["category"] == "Segmentation"
    assert fields["depends"] == "NA"
    assert fields["iconurl"].endswith("Resources/Icons/MedSegMamba.png")


def test_ui_is_well_formed_with_named_widgets():
    tree = ElementTree.parse(UI)
    widgets = {w.get("name"): w.get("class") for w in tree.iter("widget")}
    for name, cls in PANEL_WIDGETS.items():
        assert widgets.get(name) == cls, f"{name}: expected a {cls}, got {widgets.get(name)}"
    selector = next(w for w in tree.iter("widget") if w.get("name") == "inputVolumeSelector")
    assert "vtkMRMLScalarVolumeNode" in [s.text for s in selector.iter("string")]
    texts = {s.text for s in tree.iter("string")}
    assert {"Segment subcortical", "Cancel", "Show 3D", "Export statistics…"} <= texts


def test_module_uses_only_widgets_of_the_ui():
    source = read(os.path.join(MODULE_DIR, "MedSegMamba.py"))
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    widgets = {w.get("name") for w in ElementTree.parse(UI).iter("widget")}
    assert used and used <= widgets, f"MedSegMamba.py uses widgets absent from the .ui: {sorted(used - widgets)}"


def test_parameter_node_stores_every_named_checkbox_with_the_ui_default():
    tree = ast.parse(read(os.path.join(MODULE_DIR, "MedSegMamba.py")))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "MedSegMambaParameterNode")
    fields = {f.target.id: f for f in node.body if isinstance(f, ast.AnnAssign)}
    named = {}
    for widget in ElementTree.parse(UI).iter("widget"):
        properties = {p.get("name"): p[0].text for p in widget.findall("property")}
        if "SlicerParameterName" in properties:
            named[properties["SlicerParameterName"]] = (widget.get("class"), properties.get("checked", "false"))
    assert {"inputVolume", "hippocampus", "tta"} <= set(named)
    for name, (cls, checked) in named.items():
        assert name in fields, f"the .ui binds {name!r}, which MedSegMambaParameterNode does not declare"
        if cls == "QCheckBox":
            assert ast.unparse(fields[name].annotation) == "bool", name
            assert ast.literal_eval(fields[name].value) is (checked == "true"), f"{name}: default differs from the .ui"


def test_module_file_is_thin_and_imports_no_qt_at_top_level():
    source = read(os.path.join(MODULE_DIR, "MedSegMamba.py"))
    tree = ast.parse(source)
    topImports = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    topImports |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert not topImports & {"qt", "ctk", "torch"}, topImports
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert {"MedSegMamba", "MedSegMambaWidget", "MedSegMambaLogic", "MedSegMambaTest"} <= classes
    assert "except:" not in source
    assert len(source.splitlines()) < 600


def test_icon_is_a_128_png():
    with open(os.path.join(ROOT, "Resources", "Icons", "MedSegMamba.png"), "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (128, 128)


def test_shipped_colour_table_equals_labels():
    pytest.importorskip("medsegmamba.labels")
    from make_resources import COLOR_TABLE, colorTableText

    assert read(COLOR_TABLE) == colorTableText(), "Resources colour table is stale: run Testing/slicer/make_resources.py"
    from medsegmamba.labels import ASEG, HIPPOCAMPAL_SUBFIELDS

    rows = [line.split(",") for line in read(COLOR_TABLE).splitlines()[1:]]
    assert len(rows) == len(ASEG) + len(HIPPOCAMPAL_SUBFIELDS) - 1  # background once
    byLabel = {int(r[0]): r for r in rows}
    assert byLabel[17][1:5] == ["Left-Hippocampus", "220", "216", "20"]
