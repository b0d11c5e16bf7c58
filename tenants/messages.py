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


def staff_text(tenant_name: str, resident_name: str) -> str:
    return (f"【{tenant_name} 未確認案件】{resident_name}さんの安否が確認できていません。"
            "ダッシュボードで対応してください。")


AUTO_REPLY = "メッセージをありがとうございます。担当者が確認します。"
THANKS = "ご回答ありがとうございました。"
ACK_THANKS = "ありがとうございます。よろしくお願いいたします。"
LINKED = "見守りサービスへの登録が完了しました。"
WELCOME = "友だち追加ありがとうございます。市からお知らせした6桁の番号を送ってください。"
