"""The inline style and script of ``report.html``: the page carries them so it opens offline, from a CI
artifact or an e-mail, with no request to anywhere.

The script only filters what the page already shows. Without it (scripts off, a strict viewer) the
filter bar stays hidden and every section is shown in full, so nothing depends on it.
"""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root{--pass:#17692b;--fail:#b00020;--error:#7b1fa2;--skip:#8a6d00;--off:#6b6b6b;--line:#d8d8d8;
--soft:#f6f7f9}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1.5em 2em 3em;
color:#1f2328;max-width:84em;line-height:1.4}
h1{font-size:1.35em;margin:0 0 .6em}h2{font-size:1.15em;margin:1.8em 0 .5em;padding-bottom:.2em;
border-bottom:1px solid var(--line)}h3{font-size:1em;margin:0 0 .3em}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:var(--soft);border:1px solid var(--line);border-radius:4px;padding:.5em .7em;
white-space:pre-wrap;word-break:break-all;margin:.2em 0 .6em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid var(--line);padding:.3em .6em;
text-align:left;vertical-align:top}th{background:var(--soft)}
.Pass{color:var(--pass)}.Fail{color:var(--fail);font-weight:600}.Error{color:var(--error);font-weight:600}
.Skip{color:var(--skip)}.Disabled,.Not{color:var(--off)}
.verdict{border:2px solid var(--off);border-left-width:.6em;border-radius:6px;padding:.7em 1em;
margin:0 0 1em;background:var(--soft)}
.verdict .label{font-size:1.5em;font-weight:700;letter-spacing:.02em}
.verdict .line{font-weight:600}.verdict p{margin:.2em 0}
.verdict.CONFORMANT{border-color:var(--pass)}.verdict.CONFORMANT .label{color:var(--pass)}
.verdict.NON-CONFORMANT{border-color:var(--fail)}.verdict.NON-CONFORMANT .label{color:var(--fail)}
.verdict.INCONCLUSIVE{border-color:var(--error)}.verdict.INCONCLUSIVE .label{color:var(--error)}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.5em 0}
.facts dt{color:var(--off)}.facts dd{margin:0}
.counts span{display:inline-block;margin-right:1em}
.badge{display:inline-block;border-radius:3px;padding:0 .4em;font-size:.8em;font-weight:700;color:#fff;
vertical-align:.1em}
.badge.Pass{background:var(--pass)}.badge.Fail{background:var(--fail)}.badge.Error{background:var(--error)}
.badge.Skip{background:var(--skip)}.badge.Disabled,.badge.Not{background:var(--off)}
.tag{display:inline-block;border:1px solid var(--line);border-radius:3px;padding:0 .35em;font-size:.8em;
color:#444;margin-left:.3em}
.card{border:1px solid var(--line);border-left:.35em solid var(--fail);border-radius:4px;
padding:.7em 1em;margin:.7em 0}.card-Error{border-left-color:var(--error)}
.card .statement{margin:.1em 0 .3em}.card .test{color:var(--off);font-size:.9em;margin:0 0 .3em}
.card .label{font-weight:600;font-size:.9em;margin-top:.4em}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em .8em;margin:.3em 0}
.card dt{font-weight:600;font-size:.9em}.card dd{margin:0}.card dd code{white-space:pre-wrap}
.matrix td{text-align:left;min-width:8em}.matrix td.area,.matrix th.area{min-width:0;font-weight:600}
.matrix .n{display:inline-block;margin-right:.6em;white-space:nowrap}
.matrix tr.total td{border-top:2px solid #999}
#filters{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:.5em 0;
margin:1em 0;z-index:1}
#filters .group{display:inline-block;margin:.15em 1.2em .15em 0}
#filters .group>span{color:var(--off);font-size:.9em;margin-right:.3em}
#filters button{font:inherit;font-size:.85em;border:1px solid var(--line);background:#fff;border-radius:3px;
padding:.1em .5em;margin:0 .1em;cursor:pointer}
#filters button[aria-pressed=true]{background:#1f2328;color:#fff;border-color:#1f2328}
#filter-status{color:var(--off);font-size:.9em}
.filtered{display:none}
.requirements td.outcome,.requirements td:first-child{white-space:nowrap}
details{margin:.2em 0}summary{cursor:pointer;color:#444}
.none{color:var(--pass)}
"""

# Plain ES5 on purpose: the page may be opened in whatever viewer a CI system offers.
SCRIPT = """
(function () {
  var bar = document.getElementById("filters");
  if (!bar) { return; }
  bar.hidden = false;
  var state = {outcome: "", level: "", area: ""};
  function apply() {
    var shown = 0, total = 0;
    var items = document.querySelectorAll("[data-outcome]");
    for (var i = 0; i < items.length; i++) {
      var el = items[i], ok = true;
      for (var key in state) {
        if (state[key] && el.getAttribute("data-" + key) !== state[key]) { ok = false; }
      }
      el.classList.toggle("filtered", !ok);
      if (el.tagName === "TR") { total++; if (ok) { shown++; } }
    }
    document.getElementById("filter-status").textContent =
      "showing " + shown + " of " + total + " requirements";
  }
  bar.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    var dim = button.getAttribute("data-dim");
    state[dim] = button.getAttribute("data-value");
    var peers = bar.querySelectorAll('button[data-dim="' + dim + '"]');
    for (var i = 0; i < peers.length; i++) {
      peers[i].setAttribute("aria-pressed", String(peers[i] === button));
    }
    apply();
  });
  apply();
})();
"""
