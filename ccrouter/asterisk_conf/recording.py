"""The dialplan lines that record calls (`recordings:`): a Gosub from ccrouter-queue for the
recorded targets / product lines, and the ccrouter-record context running MixMonitor."""

from __future__ import annotations

from ccrouter import dialplan as dp
from ccrouter.config import Settings
from ccrouter.recordings.model import EXTENSIONS


def record_step(settings: Settings) -> list[str]:
    """The ccrouter-queue line before Queue(): nothing when recording is off."""
    rec = settings.recordings
    if not rec.enabled:
        return []
    to = f"{dp.CONTEXT_RECORD},s,1"
    if not rec.targets and not rec.products:
        return [f" same => n,Gosub({to})"]
    queues = sorted({settings.target(t).queue_name for t in rec.targets})
    tests = []
    if queues:
        tests.append(f'${{REGEX("^({"|".join(queues)})$" ${{{dp.VAR_QUEUE}}})}}')
    if rec.products:
        products = "|".join(sorted(rec.products))
        tests.append(f'${{REGEX("^({products})$" ${{{dp.VAR_PRODUCT}}})}}')
    return [f" same => n,GosubIf($[{' | '.join(tests)}]?{to})"]


def record_context(settings: Settings) -> list[str]:
    rec = settings.recordings
    if not rec.enabled:
        return []
    name = f"{dp.RECORDING_PREFIX}${{FILTER(0-9,${{{dp.VAR_CARD}}})}}.{EXTENSIONS[rec.format]}"
    path = f"{rec.directory.rstrip('/')}/{name}"
    mixmonitor = f'"${{{dp.VAR_MIXMONITOR_FILENAME}}}"'
    return [
        "",
        f"; {dp.CONTEXT_RECORD}: records the call under its card number (option b: only while",
        ";   bridged with the operator, so unanswered calls leave no file). The same card queued",
        ";   again (an overflow) keeps its one MixMonitor. A transferred caller comes here with",
        ";   its transfer card: StopMixMonitor closes the first card's file (MIXMONITOR_FILENAME",
        ";   stays set, so the announcement is not played twice), then MixMonitor starts the new",
        ";   card's file.",
        f"[{dp.CONTEXT_RECORD}]",
        f"exten => s,1,NoOp(ccrouter records card ${{{dp.VAR_CARD}}})",
        f' same => n,ExecIf($[{mixmonitor} = "{path}"]?Return())',
        f' same => n,ExecIf($[{mixmonitor} != ""]?StopMixMonitor())',
        *([f' same => n,ExecIf($[{mixmonitor} = ""]?Playback({rec.announcement}))']
          if rec.announcement else []),
        f" same => n,MixMonitor({path},b)",
        " same => n,Return()",
    ]
