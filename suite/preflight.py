"""Before any test runs: can the suite judge this target with these settings at all?

Three checks, one request each, bounded by the request timeout (capped at ``PREFLIGHT_TIMEOUT_S``):

* the target is reachable: any HTTP answer to ``GET {base}/v1/models`` counts;
* each given key works: 42ai, ``POST {token_base}/api/token`` with the key answers a 2xx (000 names
  no status code: 200, 201, ...) with a task token; fortytwo, ``GET /v1/models`` with the key as the
  bearer is not refused (401/403);
* models are known: a fortytwo target's chat (and embedding) model comes from that listing unless given.

A *problem* is something the user must fix (wrong URL, wrong key, no model to test with); the plugin
turns it into a usage error (exit 2, one line) and runs no test, so a typo in a key never becomes a
run of Errors, or a verdict. Whatever only the target's behaviour explains (an exchange that answers
500 or 200 without a task token, a target that accepts the connection and never answers) is a *note*:
the tests judge it (AUTH-001, the timeout Fails), as the README promises.

Every function takes the suite's ``Api`` and returns what it found; none prints or exits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import httpx

from suite.checks import ConformanceFailure, TargetUnreachable
from suite.features import listed_models, pick_chat_model, with_models
from suite.http import TOKEN_PATH, Api, task_token
from suite.target import TIERS, Target

__all__ = [
    "PREFLIGHT_TIMEOUT_S",
    "Findings",
    "Preflight",
    "check_key",
    "check_reachable",
    "run_preflight",
]

#: Preflight requests wait at most this long for an answer (less if the request timeout is shorter): a
#: slow answer is never a problem (the tests judge it), so waiting the full timeout would only delay
#: them.
PREFLIGHT_TIMEOUT_S = 10.0
MODELS_PATH = "/v1/models"
#: Statuses that mean "this key is not accepted here" (the user's key), not "the target misbehaves".
_REFUSED = (401, 403)
#: Statuses of the exchange that mean "no token exchange at this URL" (the user's URL or profile).
_NOT_HERE = (404, 405)


@dataclass
class Findings:
    """What one or more checks found: problems (the user must fix them) and notes (the tests judge)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: False when the target accepted a connection but did not answer in time: further checks would only
    #: wait the same way.
    answered: bool = True
    #: The answer a check got, when it got one (the fortytwo key check's model list feeds discovery).
    response: httpx.Response | None = None

    def add(self, other: Findings) -> None:
        self.problems += [p for p in other.problems if p not in self.problems]
        self.notes += [n for n in other.notes if n not in self.notes]
        self.answered = self.answered and other.answered


@dataclass(frozen=True)
class Preflight:
    """The outcome: the target to test (models filled in), problems, notes and a one-line summary."""

    target: Target
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    summary: str

    @property
    def ok(self) -> bool:
        return not self.problems


def _why(exc: BaseException) -> str:
    """A transport failure in a few words ("connection refused"), for a line the user reads."""
    cause = exc.__cause__ if isinstance(exc.__cause__, httpx.TransportError) else exc
    text = str(cause).lower()
    if isinstance(cause, httpx.ConnectTimeout):
        return "no connection within the timeout"
    if isinstance(cause, httpx.UnsupportedProtocol):
        return "not an http:// or https:// URL"
    if "refused" in text:
        return "connection refused"
    if any(
        s in text
        for s in (
            "name or service not known",
            "nodename nor servname",
            "name resolution",
            "getaddrinfo",
            "no address associated",
        )
    ):
        return "host name not found"
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def _send(
    api: Api, method: str, url: str, headers: dict[str, str] | None, where: str, option: str
) -> Findings:
    """One request; an unreachable host is a problem naming ``option``, no answer in time a note."""
    try:
        response = api.send(method, url, headers=headers)
    except TargetUnreachable as exc:
        return Findings(problems=[f"cannot reach {where} ({_why(exc)}): check {option}"])
    except ConformanceFailure as exc:  # connected, then timed out or broke the exchange: the tests judge
        return Findings(
            notes=[f"{method} {url}: {exc.message} ({exc.received}); the tests judge it"], answered=False
        )
    return Findings(response=response)


def check_reachable(api: Api) -> Findings:
    """``GET {base}/v1/models`` without credentials: any HTTP answer (401 included) means reachable."""
    base = api.target.base_url
    return _send(api, "GET", base + MODELS_PATH, None, f"the target {base}", "--target")


def _key_option(tier: str) -> str:
    return f"--key-{tier} / CONFORM42_KEY_{tier.upper()}"


def check_key(api: Api, tier: str) -> Findings:
    """Does ``tier``'s key work: exchanged (42ai) or accepted as the bearer (fortytwo)?"""
    target = api.target
    key = target.keys.get(tier)
    if not key:
        return Findings()
    if target.profile == "fortytwo":
        url = target.base_url + MODELS_PATH
        found = _send(
            api, "GET", url, {"Authorization": f"Bearer {key}"}, f"the target {target.base_url}", "--target"
        )
        if found.response is not None and found.response.status_code in _REFUSED:
            found.problems.append(
                f"the {tier} key was refused by GET {url} "
                f"(HTTP {found.response.status_code}): check {_key_option(tier)}"
            )
        return found
    url = target.token_base + TOKEN_PATH
    option = "--token-url" if target.token_url else "--target (or --token-url)"
    found = _send(
        api,
        "POST",
        url,
        {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        f"the token exchange {url}",
        option,
    )
    response = found.response
    if response is None:
        return found
    status = response.status_code
    if status in _REFUSED:
        found.problems.append(
            f"the {tier} key was refused by POST {url} (HTTP {status}): check {_key_option(tier)}"
        )
    elif status in _NOT_HERE:
        found.problems.append(
            f"POST {url} answered HTTP {status}, so there is no token exchange there: "
            "check --token-url (the token host's base URL or its full /api/token "
            "endpoint), or pass --profile fortytwo for a Fortytwo API"
        )
    elif task_token(response) is None:
        # The key may well be right: the exchange itself misbehaves, which AUTH-001 fails.
        what = "without a task_token string" if response.is_success else "instead of a 2xx"
        found.notes.append(
            f"the {tier} key's exchange at POST {url} answered HTTP {status} {what}; the AUTH tests judge it"
        )
    return found


def _discover(
    target: Target, response: httpx.Response | None, *, chat: str | None, embed: str | None
) -> tuple[Target, Findings]:
    """The fortytwo target's models from the key check's ``GET /v1/models`` answer."""
    if response is None:
        # No key, or no answer in time: nothing to discover from; the given or default IDs stand.
        why = "no API key given" if not any(target.has_key(t) for t in TIERS) else "no answer in time"
        return with_models(target, [], chat=chat, embed=embed), Findings(
            notes=[f"model discovery skipped: {why}"]
        )
    ids = listed_models(response)
    found = with_models(target, ids, chat=chat, embed=embed)
    if chat is None and pick_chat_model(ids) is None:
        return found, Findings(
            problems=[
                f"GET {target.base_url}{MODELS_PATH} (HTTP {response.status_code}) lists no chat model to "
                "test with (only ids that name embedding, rerank, speech, moderation or image models): "
                "pass --chat-model (and --embed-model if the target has one)"
            ]
        )
    return found, Findings()


def _summary(target: Target, findings: Findings, checked: int) -> str:
    parts = ["target reachable" if findings.answered else "target gave no HTTP answer in time"]
    verb = "exchanged" if target.profile == "42ai" else "accepted"
    given = sum(target.has_key(t) for t in TIERS)
    if not given:
        parts.append("no API key given (the tiers' tests are Disabled)")
    elif not findings.answered:
        parts.append("keys not checked")
    else:
        # Fewer than given: the notes say what the others' exchange answered.
        count = f"{checked}" if checked == given else f"{checked} of {given}"
        parts.append(f"{count} key{'s' if given != 1 else ''} {verb}")
    parts.append(f"models: chat {target.chat_model}, embeddings {target.embed_model or 'none'}")
    return ", ".join(parts)


def run_preflight(
    target: Target,
    *,
    discover: bool = False,
    chat_model: str | None = None,
    embed_model: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Preflight:
    """All the checks against ``target``; ``discover``: fill in the models ``GET /v1/models`` lists
    (fortytwo), keeping ``chat_model`` / ``embed_model`` where given. ``transport``: for tests."""
    quick = dataclasses.replace(target, timeout=min(target.timeout, PREFLIGHT_TIMEOUT_S))
    findings = Findings()
    checked = 0
    listing: httpx.Response | None = None
    # Impatient: a busy answer is an answer (reachable; the tests judge the rest), not a wait.
    with Api(quick, transport=transport) as api, api.impatient():
        findings.add(check_reachable(api))
        if findings.answered and not findings.problems:
            for tier in TIERS:
                if not target.has_key(tier):
                    continue
                found = check_key(api, tier)
                findings.add(found)
                if not found.answered:
                    break  # the next key would wait just as long
                if not found.problems and not found.notes:
                    checked += 1
                if listing is None and found.response is not None and target.profile == "fortytwo":
                    listing = found.response
    given = [t for t in TIERS if target.has_key(t)]
    refused = [t for t in given if any(p.startswith(f"the {t} key was refused") for p in findings.problems)]
    if target.profile == "fortytwo" and refused and refused == given:
        # Every key refused as the bearer: as likely a 42ai API (it wants task tokens) as wrong keys.
        options = ", ".join(f"--key-{t}" for t in refused)
        findings.problems = [
            f"the {'/'.join(refused)} key{'s were' if len(refused) > 1 else ' was'} refused "
            f"by GET {target.base_url}{MODELS_PATH} as the bearer: check {options} "
            "(CONFORM42_KEY_*), and --profile (a 42ai API wants task tokens: drop "
            "--profile fortytwo)"
        ]
    if discover and not findings.problems:
        target, found = _discover(target, listing, chat=chat_model, embed=embed_model)
        findings.add(found)
    return Preflight(
        target=target,
        problems=tuple(findings.problems),
        notes=tuple(findings.notes),
        summary=_summary(target, findings, checked),
    )
