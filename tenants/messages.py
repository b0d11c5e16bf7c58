"""What residents, contacts and staff are told, in plain polite Japanese."""

from __future__ import annotations

ANSWER_WORDS = {"1", "１", "ok", "ｏｋ", "はい", "大丈夫", "だいじょうぶ", "元気", "げんき", "げんきです",
                "元気です", "無事", "ぶじ"}
ANSWER_LABEL = "元気です"


def is_answer(text: str) -> bool:
    """Does a resident's reply mean "I am fine"? ("1", "OK", "はい", "大丈夫", …)"""
    cleaned = text.strip().strip("。.!！").lower()
    return cleaned in ANSWER_WORDS


def answer_data(occurrence: str) -> str:
    """The postback data of LINE's OK button; with the sender's user id it names the check."""
    return f"answer:{occurrence}"


def check_text(tenant_name: str) -> str:
    return f"{tenant_name}の見守りサービスです。お元気ですか？下の「{ANSWER_LABEL}」を押してください。"


def check_sms(tenant_name: str) -> str:
    return f"{tenant_name}の見守りサービスです。お元気でしたら 1 または はい と返信してください。"


def check_voice(tenant_name: str) -> str:
    """Spoken before the call's own "press 1" prompt (worker.voice adds it)."""
    return f"こちらは{tenant_name}の見守りサービスです。"


def reminder_text(tenant_name: str, channel: str) -> str:
    prefix = "【再送】"
    if channel == "line":
        return prefix + check_text(tenant_name)
    if channel == "sms":
        return prefix + check_sms(tenant_name)
    return "もう一度おかけしました。" + check_voice(tenant_name)


def round_text(message: str, channel: str) -> str:
    if channel == "line":
        return f"{message}\n無事でしたら「{ANSWER_LABEL}」を押してください。"
    if channel == "sms":
        return f"{message} 無事でしたら 1 または はい と返信してください。"
    return message


def alert_text(tenant_name: str, resident_name: str, channel: str, to_resident: bool) -> str:
    if to_resident:
        return reminder_text(tenant_name, channel)
    ack = {"line": "様子を見に行ける場合は「見に行きます」を押してください。",
           "sms": "様子を見に行ける場合は 1 と返信してください。",
           "voice": ""}[channel]  # a call adds its own "press 1" prompt
    return (f"{tenant_name}の見守りサービスです。{resident_name}さんから安否確認への応答がありません。"
            f"ご確認をお願いします。{ack}")


def digest_data(group_id: int, occurrence: str) -> str:
    """The postback data of the leader's 「見に行きます」 on a group digest."""
    return f"digest:{group_id}:{occurrence}"


GO_AND_SEE = "見に行きます"
DIGEST_MAX_NAMES = 30  # a longer list ends "ほか n 名": a LINE message should stay readable


def digest_text(group_name: str, when: str, names: list[str], for_leader: bool) -> str:
    """The つながり digest: who in the group has not answered the check of `when` (names only)."""
    shown = "\n".join(f"・{name}さん" for name in names[:DIGEST_MAX_NAMES])
    if len(names) > DIGEST_MAX_NAMES:
        shown += f"\nほか{len(names) - DIGEST_MAX_NAMES}名"
    text = (f"【{group_name}】{when}の安否確認に、まだ応答のない方がいます。\n{shown}\n"
            "お声がけをお願いします。")
    if for_leader:
        text += f"様子を見に行ける場合は「{GO_AND_SEE}」を押してください。"
    return text


def digest_reply(leader_name: str, acknowledged: list[str], no_incident: list[str],
                 answered: list[str], handled: list[str]) -> str:
    """What the leader reads after 「見に行きます」: what was recorded for whom, and what not."""

    def names(people: list[str]) -> str:
        return "、".join(f"{name}さん" for name in people)

    parts = ["ありがとうございます。"]
    if acknowledged:
        parts.append(f"{names(acknowledged)}の未確認案件に、{leader_name}さんが見に行くと記録しました。")
    if no_incident:
        parts.append(f"{names(no_incident)}はまだ未確認案件になっていないため、記録していません。")
    if answered:
        parts.append(f"{names(answered)}はその後応答がありました。")
    if handled:
        parts.append(f"{names(handled)}は既に対応中です。")
    return "".join(parts)


DIGEST_NOT_LEADER = "このボタンはグループリーダーの方が使います。お声がけをありがとうございます。"


def broadcast_text(tenant_name: str, message: str, channel: str) -> str:
    """An information message from staff (event notice, evacuation information); no answer asked."""
    if channel == "voice":
        return f"{tenant_name}からのお知らせです。{message}"
    separator = "\n" if channel == "line" else ""
    return f"【{tenant_name}からのお知らせ】{separator}{message}"


def spoken_twice(text: str) -> str:
    """A call that only informs says its message twice, for those who missed the start."""
    return f"{text} 繰り返します。{text}"


def earthquake_text(area_name: str, intensity_label: str) -> str:
    """The question of a round an earthquake started (round_text adds how to answer)."""
    return f"{area_name}で震度{intensity_label}の地震がありました。ご無事ですか?"


def staff_text(tenant_name: str, resident_name: str) -> str:
    return (f"【{tenant_name} 未確認案件】{resident_name}さんの安否が確認できていません。"
            "ダッシュボードで対応してください。")


AUTO_REPLY = "メッセージをありがとうございます。担当者が確認します。"
THANKS = "ご回答ありがとうございました。"
ACK_THANKS = "ありがとうございます。よろしくお願いいたします。"
LINKED = "見守りサービスへの登録が完了しました。"
WELCOME = "友だち追加ありがとうございます。市からお知らせした6桁の番号を送ってください。"
LINK_CODE_WRONG = ("番号を確認できませんでした。市からお知らせした6桁の番号と、その有効期限"
                   "(発行から14日)をお確かめのうえ、もう一度送ってください。")
LINK_LOCKED = ("番号の誤りが続いたため、しばらく登録をお受けできません。"
               "お手数ですが、市の担当窓口にお問い合わせください。")
LINK_PAUSED = ("ただいま登録をお受けできません。時間をおいて送り直すか、"
               "市の担当窓口にお問い合わせください。")
