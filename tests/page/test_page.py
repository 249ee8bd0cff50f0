"""symcost page: one HTML file whose numbers, computed in a real browser, equal `symcost eval`'s.

The browser tests drive Debian's headless Chromium with selenium, load each page from disk
with the network switched off, and compare with the CLI's own JSON (`eval`, `memory`) digit
for digit. Without chromium and chromedriver they are skipped, except under CI (.ci/run
installs both), where a missing browser is a failure. Screenshots go to build/test-artifacts/.
"""

import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
import sympy
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, arch
from symcost import api
from symcost.cli import main
from symcost.codegen.js import js

ARTIFACTS = ROOT / "build" / "test-artifacts"
SPECS = sorted(p.stem for p in (ROOT / "architectures").glob("*.yaml"))

# two points besides the defaults, per shipped spec: sizes people try (another model of the
# family, a longer or shorter sequence, a batch)
POINTS = {
    "deepseek_v3": [{"seq_len": 1024, "batch": 2, "n_layers": 8},
                    {"d_model": 4096, "n_experts": 64, "top_k": 6, "n_dense": 1}],
    "gemma2": [{"seq_len": 2048, "window": 1024, "batch": 3},
               {"d_model": 3584, "n_layers": 42, "n_heads": 16, "n_kv_heads": 8, "d_ff": 14336}],
    "llama": [{"seq_len": 2048, "batch": 8},
              {"d_model": 5120, "n_layers": 40, "n_heads": 40, "n_kv_heads": 40, "d_ff": 13824}],
    "lstm": [{"hidden": 1500, "d_embed": 1500}, {"n_layers": 3, "batch": 1, "seq_len": 100}],
    "mamba": [{"d_model": 2560, "n_layers": 64}, {"seq_len": 8192, "batch": 4, "d_state": 64}],
    "mamba2": [{"d_model": 1536, "n_layers": 48}, {"seq_len": 8000, "batch": 4, "chunk": 128}],
    "zamba2": [{"d_model": 2048, "n_mamba_heads": 64, "adapter_rank": 64, "n_layers": 56},
               {"seq_len": 16384, "batch": 2}],
    "megatron_gpt": [{"d_model": 1024, "n_layers": 24, "n_heads": 16, "dropout": 0}, {"seq_len": 1024, "batch": 4,
                                                                                     "dropout": 0.25}],
    "mistral": [{"seq_len": 2048, "window": 1024}, {"seq_len": 32768, "batch": 2}],
    "gpt_oss": [{"n_layers": 24, "n_experts": 32}, {"seq_len": 32768, "batch": 2}],  # gpt-oss-20b's depth and experts
    "llama4_scout": [{"n_experts": 128}, {"seq_len": 16384, "chunk": 4096, "batch": 2}],
    "qwen3_next": [{"n_experts": 256, "top_k": 8, "n_layers": 40}, {"seq_len": 32768, "batch": 2}],  # Qwen3.5's MoE
    "kimi_linear": [{"n_groups": 4, "n_experts": 128}, {"seq_len": 32768, "batch": 2}],
    "deepseek_v4_flash": [{"n_hc": 2, "n_experts": 128}, {"seq_len": 65536, "batch": 2}],
    "mixtral": [{"n_experts": 16, "top_k": 4}, {"seq_len": 32768, "batch": 2}],
    "mlp": [{"hidden": 1000, "n_hidden": 5}, {"batch": 1, "d_in": 3072}],
    "resnet50": [{"image_size": 160, "batch": 8}, {"w": 32, "n3": 23}],
    "transformer": [{"d_model": 1024, "n_layers": 24, "n_heads": 16}, {"seq_len": 512, "batch": 8}],
    "transformer_base": [{"d_model": 1024, "d_ff": 4096, "n_heads": 16}, {"src_len": 64, "seq_len": 96, "batch": 2}],
    "clip": [{"patch": 16, "batch": 32}, {"d_vision": 1024, "n_vision_layers": 24, "n_vision_heads": 16,
                                          "d_vision_ff": 4096, "patch": 14, "d_text": 768, "n_text_heads": 12,
                                          "d_text_ff": 3072, "proj": 768}],  # ViT-B/16 at 32 pairs; ViT-L/14
    "vit_b16": [{"image_size": 384}, {"patch": 32, "d_model": 1024, "n_heads": 16, "n_layers": 24, "d_ff": 4096}],
}

def run(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def sets(values: dict) -> list[str]:
    return [x for k, v in values.items() for x in ("--set", f"{k}={v}")]


def cli_json(spec: str, values: dict, convention: str = "pytorch") -> tuple[dict, dict]:
    """`symcost eval --format json` and `symcost memory --format json` at these sizes."""
    e = json.loads(run("eval", spec, *sets(values), "--convention", convention, "--format", "json", "--no-cache"))
    m = json.loads(run("memory", spec, *sets(values), "--format", "json"))
    return e, m["bytes"]


def strings(value):
    """A document with every number as the page writes it: an integer's digits, a float as Python's repr."""
    if isinstance(value, dict):
        return {k: strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strings(v) for v in value]
    return repr(value) if isinstance(value, float) else str(value)


def expected(spec: str, values: dict, convention: str = "pytorch") -> dict:
    """What window.symcost.evaluate must return: eval's JSON document (the same keys, in the same
    shape) and memory's byte counts, every number a string."""
    e, memory = cli_json(spec, values, convention)
    keys = ("dims", "inputs", "params", "active_params", "flops", "flops_per_input", "components")
    return strings({k: e[k] for k in keys}) | strings(memory)


def write_page(tmp_path, name: str, *args) -> Path:
    out = tmp_path / f"{name}.html"
    run("page", arch(name), "-o", out, *args)
    return out


# -- without a browser ---------------------------------------------------------------------

def test_page_is_one_file_that_asks_for_nothing(tmp_path):
    text = write_page(tmp_path, "llama").read_text()
    assert "default-src 'none'" in text  # the browser itself refuses any request
    for needle in ("http://", "https://", "src=", "<link", "@import", "url(", "fetch(", "XMLHttpRequest"):
        assert needle not in text, needle
    assert text.count("<script>") == 1 and "<math" in text
    assert "llama-2-7b" in text


def test_page_cli_errors(tmp_path, cli):
    bad = cli("page", arch("llama"), "-o", tmp_path / "x.html", "--set", "n_heads=3")
    assert bad.exit_code == 2 and "d_model/n_heads = 4096/3" in bad.stderr and "Traceback" not in bad.output
    derived = cli("page", arch("llama"), "-o", tmp_path / "x.html", "--set", "d_head=64")
    assert derived.exit_code == 2 and "d_head: a derived dim" in derived.stderr
    same = cli("page", arch("llama"), "-o", arch("llama"))
    assert same.exit_code == 2 and "is also the command's input" in same.stderr
    missing = cli("page", arch("llama"), "-o", tmp_path / "no" / "such" / "x.html")
    assert missing.exit_code == 2 and "cannot write" in missing.stderr
    assert cli("page", arch("llama")).exit_code == 2  # -o is required


# -- in the browser --------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium and chromium-driver for the page tests (.ci/run installs them)")
        pytest.skip("the page tests need Debian's chromium and chromium-driver (apt install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                           {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    yield driver
    driver.quit()


def open_page(driver, path: Path) -> None:
    driver.get_log("performance"), driver.get_log("browser")  # forget what earlier pages logged
    driver.get(path.as_uri())
    assert driver.execute_script("return document.body.dataset.ready") == "true"


def assert_quiet(driver, path: Path) -> None:
    """No request but the page itself, and nothing on the console."""
    requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    urls = {m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"}
    assert urls <= {path.as_uri()}, urls
    assert driver.get_log("browser") == []


def page_evaluate(driver, values: dict) -> dict:
    return driver.execute_script("return window.symcost.evaluate(arguments[0])", {k: str(v) for k, v in values.items()})


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECS)
def test_page_equals_eval_in_chromium(browser, tmp_path, name):
    path = write_page(tmp_path, name)
    open_page(browser, path)
    spec = arch(name)
    for values in [{}, *POINTS[name]]:
        assert page_evaluate(browser, values) == expected(spec, values), (name, values)
    assert_quiet(browser, path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"page-{name}.png"))


def shown(driver) -> dict:
    return {e.get_attribute("data-metric"): e.get_attribute("data-exact")
            for e in driver.find_elements("css selector", "dd[data-metric][data-exact]")}


def type_into(driver, name: str, value) -> None:
    """Type the value key by key (each key an input event, as a person's typing)."""
    field = driver.find_element("name", name)
    field.clear()
    field.send_keys(str(value))


def paste(driver, name: str, text: str) -> None:
    """Replace the field's text at once (one input event, as a paste)."""
    driver.execute_script("const f = document.getElementsByName(arguments[0])[0]; f.value = arguments[1];"
                          "f.dispatchEvent(new Event('input'));", name, text)


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECS)
def test_dims_set_through_the_inputs(browser, tmp_path, name):
    """Typing sizes into the fields shows eval's numbers at those sizes."""
    path = write_page(tmp_path, name)
    open_page(browser, path)
    values = POINTS[name][1]
    for dim, value in values.items():
        type_into(browser, dim, value)
    e, memory = cli_json(arch(name), values)
    numbers = shown(browser)
    assert numbers["params"] == str(e["params"])
    assert numbers["forward"] == str(e["flops"]["forward"])
    assert numbers["backward"] == str(e["flops"]["backward"])
    assert numbers["train"] == str(e["flops"]["train"])
    if "active_params" in numbers:
        assert numbers["active_params"] == str(e["active_params"])
    for m in ("forward", "train"):  # exact: n/d where not whole
        assert Fraction(numbers[f"{m}_per_input"]) == Fraction(e["flops"][m], e["inputs"])
    for m in ("weights_bytes", "kv_bytes_per_token", "kv_cache_bytes", "peak_training_bytes", "peak_inference_bytes"):
        assert numbers[m] == str(memory[m]), m
    assert not browser.find_elements("css selector", "input[aria-invalid=true]")
    assert_quiet(browser, path)


@pytest.mark.slow
@pytest.mark.parametrize("name, convention", [("lstm", "full"), ("transformer_base", "macs"), ("transformer", "full")])
def test_other_conventions_and_fractional_flops_per_token(browser, tmp_path, name, convention):
    """FLOPs per token need not be whole (an encoder reads src_len tokens, the loss counts per
    step), and eval then prints a float: the page rounds n/d once to the nearest double and
    prints it as Python does."""
    path = write_page(tmp_path, name, "--convention", convention)
    open_page(browser, path)
    floats = 0
    for seq_len in (3, 5, 7, 33, 100, 1000):
        values = {"seq_len": seq_len, "batch": 3}
        want = expected(arch(name), values, convention)
        assert page_evaluate(browser, values) == want
        floats += any(c in want["flops_per_input"]["train"] for c in ".e")
    assert floats or name == "transformer"  # the test reaches the float case


def test_bad_input_is_marked_and_the_numbers_stay(browser, tmp_path):
    path = write_page(tmp_path, "llama")
    open_page(browser, path)
    type_into(browser, "seq_len", 2048)
    before = shown(browser)
    assert before["forward"] == str(api.evaluate(arch("llama"), seq_len=2048).total["forward"])
    cases = {
        ("seq_len", "abc"): "seq_len must be a positive integer",
        ("seq_len", "0"): "seq_len must be a positive integer, got 0",
        ("seq_len", "2.5"): 'seq_len must be a positive integer, got "2.5"',
        ("seq_len", "-3"): 'seq_len must be a positive integer, got "-3"',
        ("seq_len", "1" + "0" * 18): "seq_len must be below 10**18",
        ("n_heads", "3"): "dims/d_head: d_model/n_heads = 4096/3 at d_model=4096, n_heads=3; a dim must be a positive",
        ("n_kv_heads", "5"): "5 kv_heads do not divide 32 heads",
    }
    for (dim, text), reason in cases.items():
        paste(browser, dim, text)
        field = browser.find_element("name", dim)
        assert field.get_attribute("aria-invalid") == "true"
        shown_reason = field.find_element("xpath", "..").find_element("css selector", ".reason").text
        assert reason in shown_reason, (dim, text, shown_reason)
        assert shown(browser) == before  # the last valid point
        paste(browser, dim, "2048" if dim == "seq_len" else "32")
        assert field.get_attribute("aria-invalid") is None
    assert shown(browser) == before
    with pytest.raises(Exception, match="n_heads"):
        page_evaluate(browser, {"n_heads": 3})
    assert_quiet(browser, path)


def test_a_rate_is_typed_as_written_and_checked(browser, tmp_path):
    """megatron_gpt's dropout is a rate: a field with no slider (and no plot axis), read exactly
    (0.1 is 1/10, 1/3 a fraction), refused outside [0, 1); its masks follow what is typed."""
    path = write_page(tmp_path, "megatron_gpt", "--set", "n_layers=2", "--set", "d_model=256", "--set", "n_heads=4")
    open_page(browser, path)
    field = browser.find_element("name", "dropout")
    assert field.get_attribute("value") == "0.1"
    assert not browser.find_elements("id", "range-dropout") and browser.find_elements("id", "range-d_model")
    assert "dropout" not in [o.get_attribute("value") for o in browser.find_elements("css selector", "select option")]
    before = shown(browser)
    for text in ("1", "1.5", "-0.1", "abc", "1/0"):
        paste(browser, "dropout", text)
        assert field.get_attribute("aria-invalid") == "true", text
        reason = field.find_element("xpath", "..").find_element("css selector", ".reason").text
        assert "dropout is a rate: a number in [0, 1)" in reason, (text, reason)
        assert shown(browser) == before
    sizes = {"n_layers": 2, "d_model": 256, "n_heads": 4}
    for text, value in (("0", 0), ("1/3", Fraction(1, 3)), ("0.1", Fraction(1, 10))):
        paste(browser, "dropout", text)
        assert field.get_attribute("aria-invalid") is None
        memory = json.loads(run("memory", arch("megatron_gpt"), *sets({**sizes, "dropout": text}), "--format", "json"))
        assert shown(browser)["peak_training_bytes"] == str(memory["bytes"]["peak_training_bytes"]), text
    assert shown(browser) == before
    assert page_evaluate(browser, {**sizes, "dropout": "1/3"})["dims"]["dropout"] == repr(float(Fraction(1, 3)))
    assert_quiet(browser, path)


def test_a_field_refused_alone_is_taken_once_the_others_fit(browser, tmp_path):
    """d_model=5120 with 32 heads is fine, 40 heads need it: typing heads first marks n_heads, then
    typing d_model takes both."""
    path = write_page(tmp_path, "llama")
    open_page(browser, path)
    type_into(browser, "n_heads", 40)
    assert browser.find_element("name", "n_heads").get_attribute("aria-invalid") == "true"
    type_into(browser, "n_kv_heads", 40)
    type_into(browser, "d_model", 5120)
    assert not browser.find_elements("css selector", "input[aria-invalid=true]")
    want = api.evaluate(arch("llama"), d_model=5120, n_heads=40, n_kv_heads=40).total
    assert shown(browser)["params"] == str(want["params"])


def test_the_chart_and_the_plot_follow_the_point(browser, tmp_path):
    """The breakdown labels each component's share of parameters and of forward FLOPs as eval's
    numbers give it; the plot marks the current size on a curve that rises with it, and says so
    when the metric does not depend on the dim."""
    from selenium.webdriver.support.ui import Select

    path = write_page(tmp_path, "llama")
    open_page(browser, path)
    type_into(browser, "seq_len", 2048)
    e = api.evaluate(arch("llama"), seq_len=2048).to_dict()
    params, forward = e["params"], e["flops"]["forward"]
    want = [(f"{100 * c['params'] / params:.1f}%", f"{100 * c['flops']['forward'] / forward:.1f}%")
            for c in e["components"] if c["params"] or c["flops"]["forward"]]
    labels = [t.text for t in browser.find_elements("css selector", "#chart svg text") if t.text.endswith("%")]
    assert list(zip(labels[::2], labels[1::2])) == want
    assert labels.count("64.2%") == 1  # the MLPs hold most of the weights (64.2% of them)

    def here():
        return browser.find_element("css selector", "#plot circle.here title").get_attribute("textContent")

    assert here() == "seq_len = 2048"
    y_labels = [t.text for t in browser.find_elements("css selector", "#plot svg text[text-anchor=end]")]
    assert y_labels == ["10T", "100T", "1000T"]  # round values (before: 3.42T, 18.76T, 102.96T, …)
    curve = browser.find_element("css selector", "#plot polyline.curve").get_attribute("points").split()
    heights = [float(p.split(",")[1]) for p in curve]
    assert len(heights) > 10 and heights == sorted(heights, reverse=True)  # forward FLOPs rise with seq_len
    Select(browser.find_element("id", "plot-metric")).select_by_value("params")
    assert browser.find_element("id", "plot").text == "params does not change with seq_len here."
    Select(browser.find_element("id", "plot-dim")).select_by_value("d_model")
    assert here() == "d_model = 4096"
    assert_quiet(browser, path)


def test_sliders_stop_only_at_valid_sizes(browser, tmp_path):
    """Every stop of the n_heads slider divides d_model and is divided by n_kv_heads."""
    path = write_page(tmp_path, "mistral")
    open_page(browser, path)
    stops = browser.execute_script("""
        const s = document.getElementById('range-n_heads'), out = [];
        s.dispatchEvent(new Event('focus'));
        for (let i = 0; i <= Number(s.max); i++) {
          s.value = String(i); s.dispatchEvent(new Event('input'));
          out.push(document.getElementsByName('n_heads')[0].value);
        }
        return out;""")
    stops = [int(s) for s in stops]
    assert stops == sorted(stops) and 32 in stops and len(stops) > 3
    assert all(4096 % h == 0 and h % 8 == 0 for h in stops)
    assert not browser.find_elements("css selector", "input[aria-invalid=true]")
    assert_quiet(browser, path)


def test_phone_width_has_no_sideways_scroll(browser, tmp_path):
    path = write_page(tmp_path, "deepseek_v3")
    browser.set_window_size(390, 844)
    try:
        open_page(browser, path)
        wide = browser.execute_script("return document.documentElement.scrollWidth")
        assert wide <= 390
        # each number under its name, with the width to stay on one line (before: beside it, in pieces)
        lines = browser.execute_script("""return [...document.querySelectorAll('dl#metrics dd')].map(dd => {
            const t = dd.previousElementSibling.getBoundingClientRect(), r = document.createRange();
            r.selectNodeContents(dd.firstChild);
            return [dd.getBoundingClientRect().top >= t.bottom, r.getClientRects().length]; });""")
        assert lines and all(below and pieces == 1 for below, pieces in lines), lines
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "page-deepseek_v3-phone.png"))
    finally:
        browser.set_window_size(1280, 900)


sizes = st.integers(1, 64)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(heads=st.integers(1, 16), per_head=st.integers(1, 24), kv_div=st.integers(1, 16), layers=sizes,
       seq=st.integers(1, 4096), batch=st.integers(1, 8), d_ff=st.integers(1, 20000), vocab=st.integers(1, 100000))
def test_page_matches_the_engine_at_drawn_sizes(llama_page, heads, per_head, kv_div, layers, seq, batch, d_ff, vocab):
    """Drawn sizes for llama: the page's numbers equal symcost.evaluate's, or both refuse."""
    browser = llama_page
    kv = max(k for k in range(1, heads + 1) if heads % k == 0 and k <= kv_div)
    values = {"d_model": heads * per_head * 2, "n_heads": heads, "n_kv_heads": kv, "n_layers": layers,
              "seq_len": seq, "batch": batch, "d_ff": d_ff, "vocab": vocab}
    e = api.evaluate(arch("llama"), values).to_dict()
    got = page_evaluate(browser, values)
    assert got["params"] == str(e["params"]) and got["flops"] == strings(e["flops"])
    assert got["components"] == strings(e["components"])


@pytest.fixture(scope="module")
def llama_page(browser, tmp_path_factory):
    path = write_page(tmp_path_factory.mktemp("page"), "llama")
    open_page(browser, path)
    return browser


def test_derived_dims_are_bounded_in_the_page_as_they_are_computed(browser, tmp_path):
    """A chain of derived dims stops at the first of 10**18 or more, as eval does, and the
    numbers stay at the last valid point."""
    spec = tmp_path / "chain.yaml"
    chain = 'b: "a**16", c: "4096 * b**3", e: "c + b"'
    spec.write_text(f"name: chain\ndims: {{a: 1, {chain}, d: 8, seq_len: 4, batch: 1}}\n"
                    "layers:\n  - mlp: {dim: d, hidden: e}\n")
    path = tmp_path / "chain.html"
    run("page", spec, "-o", path)
    open_page(browser, path)
    before = shown(browser)
    paste(browser, "a", "2")
    reason = browser.find_element("name", "a").find_element("xpath", "..").find_element("css selector", ".reason").text
    assert reason.startswith("dims/c: 4096*b**3 = 1152921504606846976 at b=65536")  # as eval words it
    assert "a positive integer below 10**18" in reason
    assert shown(browser) == before
    assert_quiet(browser, path)


# Every node the compiler knows, evaluated in the browser and by sympy at the same point.
x, y, z = (sympy.Symbol(n, integer=True, positive=True) for n in "xyz")
FORMS = [
    sympy.floor((3 * x + y) / (2 * z)), sympy.ceiling(x**2 / (y + 7)), sympy.Min(x * y, 5 * z, 40),
    sympy.Max(x - y, z - x) + sympy.Rational(7, 3) * x, sympy.Mod(x**3 + y, z + 1),
    sympy.Piecewise((x * y, x > y), (sympy.Rational(1, 2) * y, sympy.Eq(x, y)), (z**2, True)),
    x / (y * z) + y**-2, (x + y) ** 5 - sympy.floor(x / 3) * sympy.ceiling(-y / 7),
]


@pytest.fixture(scope="module")
def forms_page(browser, tmp_path_factory):
    from importlib import resources

    runtime = resources.files("symcost.page").joinpath("runtime.js").read_text()
    body = ",".join(f"v => {js(f)}" for f in FORMS)
    path = tmp_path_factory.mktemp("forms") / "forms.html"
    path.write_text(f"<!DOCTYPE html><meta charset='utf-8'><script>{runtime}\nconst FORMS = [{body}];\n"
                    "window.at = p => { const v = {x: q(BigInt(p.x)), y: q(BigInt(p.y)), z: q(BigInt(p.z))};"
                    " return FORMS.map(f => show(f(v))); };\n"
                    "window.number = (n, d) => jsonNumber(q(BigInt(n), BigInt(d)));</script>")
    browser.get(path.as_uri())
    return browser


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(1, 10**6))
def test_the_compiled_forms_are_exact(forms_page, a, b, c):
    """floor, ceiling, min, max, Mod, piecewise, rational coefficients and negative powers, exactly:
    the browser's value of each form equals sympy's at drawn points, digit for digit."""
    got = forms_page.execute_script("return window.at(arguments[0])", {"x": str(a), "y": str(b), "z": str(c)})
    want = [str(f.xreplace({x: a, y: b, z: c})) for f in FORMS]
    assert got == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(-10**30, 10**30), st.integers(1, 10**15))
def test_a_ratio_prints_as_python_prints_it(forms_page, n, d):
    """eval's JSON writes a FLOPs-per-token ratio as Python's n / d (rounded once) when not whole:
    the page's jsonNumber gives the same text, exponent forms included."""
    want = str(n // d) if n % d == 0 else repr(n / d)
    assert forms_page.execute_script("return window.number(arguments[0], arguments[1])", str(n), str(d)) == want


HOSTILE_NAMES = ["<!--<script>", "</script><script>alert(1)</script>", "a\u2028b & c > d"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_no_spec_text_changes_how_the_page_is_read(browser, tmp_path, name):
    """A spec's name (or any of its text) is data: the page's script still runs, computes eval's
    numbers and shows the name as written (before, `<!--<script>` left the script unclosed)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: {json.dumps(name)}\ndims: {{d: 8, seq_len: 4}}\nlayers:\n  - mlp: {{dim: d, hidden: 16}}\n")
    path = tmp_path / "p.html"
    run("page", spec, "-o", path)
    text = path.read_text()
    assert "<!--" not in text.split("<script>", 1)[1] and text.count("</script>") == 1
    open_page(browser, path)
    assert_quiet(browser, path)
    assert page_evaluate(browser, {}) == expected(str(spec), {})


def test_dims_named_like_object_properties_are_dims(browser, tmp_path):
    """`constructor`, `toString`, `valueOf` and `__proto__` are plain dim names on the page (before,
    its script threw)."""
    spec = tmp_path / "s.yaml"
    spec.write_text("name: odd\ndims: {constructor: 8, toString: 16, valueOf: 2, seq_len: 4}\nlayers:\n"
                    "  - mlp: {dim: constructor, hidden: toString}\n  - repeat: valueOf\n    layers:\n"
                    "      - mlp: {dim: constructor, hidden: toString}\n")
    path = tmp_path / "p.html"
    run("page", spec, "-o", path)
    open_page(browser, path)
    assert_quiet(browser, path)
    for values in ({}, {"constructor": 24, "valueOf": 3}):
        assert page_evaluate(browser, values) == expected(str(spec), values)
