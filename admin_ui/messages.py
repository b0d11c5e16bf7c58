"""The resident, group and import rules' messages as staff read them.

The schemas and services answer in English, as the API does; the pages show the same messages
in the staff member's language. Each pattern may occur anywhere in a message, because the CSV
import prefixes the column and cell (「電話番号 「03-123」: Not a valid phone number: '03-123'.」).
A message no pattern knows is shown as the API says it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _

_Say = Callable[[re.Match[str]], str]

_PATTERNS: list[tuple[re.Pattern[str], _Say]] = [(re.compile(pattern), say) for pattern, say in [
    (r"Missing data for required field\.|Field may not be null\.|Must not be blank\.",
     lambda m: _("入力してください。")),
    (r"Not a valid phone number: '([^']*)'\.",
     lambda m: _("電話番号として正しくありません(%(value)s)。090-1234-5678 のように入力してください。",
                 value=m[1])),
    (r"Use kana \(フリガナ\) only\.", lambda m: _("フリガナはひらがなかカタカナで入力してください。")),
    (r"Not a valid date: '([^']*)'\.",
     lambda m: _("日付として読めません(%(value)s)。"
                 "昭和15年4月1日、S15.4.1、1940-04-01 のように入力してください。", value=m[1])),
    (r"Not a valid date\.", lambda m: _("日付として読めません。")),
    (r"The birth date is not plausible\.", lambda m: _("生年月日が正しくありません。")),
    (r"A LINE user id is U followed by 32 hexadecimal digits\.",
     lambda m: _("LINE ユーザーIDは U と32桁の英数字です。")),
    (r"Give at least one channel\.", lambda m: _("連絡方法を1つ以上選んでください。")),
    (r"Each value may appear only once\.", lambda m: _("同じものを2回選んでいます。")),
    (r"SMS and voice need a phone number\.", lambda m: _("SMSと電話には電話番号が必要です。")),
    (r"A contact needs a phone number or a LINE user id\.",
     lambda m: _("緊急連絡先には電話番号かLINE ユーザーIDが必要です。")),
    (r"The LINE channel needs a LINE user id\.",
     lambda m: _("LINEで連絡するにはLINE ユーザーIDが必要です。")),
    (r"Resident (\d+) already has it\.", lambda m: _("利用者 %(id)s がすでに使っています。", id=m[1])),
    (r"No check policy \d+\.|No check policy has this name\.",
     lambda m: _("その見守り設定は見つかりません。")),
    (r"No group named ([^.]*)\.", lambda m: _("「%(names)s」というグループはありません。", names=m[1])),
    (r"No group [\d, ]+\.", lambda m: _("そのグループは見つかりません。")),
    (r"No resident [\d, ]+\.", lambda m: _("その利用者は見つかりません。")),
    (r"A group with this name exists\.", lambda m: _("同じ名前のグループがあります。")),
    (r"Must be one of: [^.]*\.", lambda m: _("選択肢から選んでください。")),
    (r"Longer than maximum length (\d+)\.", lambda m: _("%(n)s文字以内で入力してください。", n=m[1])),
    (r"Not a valid integer\.", lambda m: _("半角の整数で入力してください。")),
    (r"Must be greater than or equal to (\d+) and less than or equal to (\d+)\.",
     lambda m: _("%(low)s〜%(high)sの範囲で入力してください。", low=m[1], high=m[2])),
    (r"Must be after the first paused day\.",
     lambda m: _("再開日は休止の開始日より後にしてください。")),
    (r"Must be in the future: it is the day checks resume\.",
     lambda m: _("再開日は明日以降にしてください(この日から安否確認を再開します)。")),
    (r"Overlaps the pause (\S+)–(\S+)\.",
     lambda m: _("登録済みの休止(%(start)s〜%(until)s)と重なっています。", start=m[1], until=m[2])),
    (r"the tenant's quota of (\d+) residents would be exceeded",
     lambda m: _("登録できる利用者数(%(n)s人)を超えます。", n=m[1])),
    # The CSV import's own checks.
    (r"Unknown column 「([^」]*)」: .*",
     lambda m: _("「%(header)s」という列はありません。使える列名はこのページの一覧のとおりです。",
                 header=m[1])),
    (r"「([^」]*)」 repeats the column 「([^」]*)」\.",
     lambda m: _("「%(header)s」は「%(first)s」と同じ列です。", header=m[1], first=m[2])),
    (r"The column 氏名 \(name\) is required\.", lambda m: _("「氏名」の列が必要です。")),
    (r"Give 「([^」]*)」 or 「([^」]*)」, not both\.",
     lambda m: _("「%(a)s」と「%(b)s」はどちらか一方だけにしてください。", a=m[1], b=m[2])),
    (r"Column (\d+) holds 「([^」]*)」 but has no header, so it would be lost\.",
     lambda m: _("%(n)s列目に「%(value)s」がありますが、見出しがありません。", n=m[1], value=m[2])),
    (r"residents ([\d, ]+) share this name and birth date; add (\S+) to tell them apart\.",
     lambda m: _("同じ氏名・生年月日の利用者が複数います(%(ids)s)。%(column)sで区別してください。",
                 ids=m[1], column=m[2])),
    (r"the same resident as row (\d+)\.", lambda m: _("%(row)s行目と同じ方です。", row=m[1])),
    (r"already belongs to resident (\d+)\.",
     lambda m: _("利用者 %(id)s がすでに使っています。", id=m[1])),
    (r"row (\d+) has the same LINE ID\.", lambda m: _("%(row)s行目と同じLINE IDです。", row=m[1])),
    (r"The file is an Excel workbook .*",
     lambda m: _("Excelのブック(.xlsx)です。"
                 "Excelで「CSV UTF-8」か「CSV(コンマ区切り)」で保存してからお選びください。")),
    (r"The file is UTF-16 text .*",
     lambda m: _("UTF-16(Unicode テキスト)のファイルです。"
                 "Excelで「CSV UTF-8」か「CSV(コンマ区切り)」で保存してください。")),
    (r"The file is neither UTF-8 nor Shift_JIS \(CP932\) text \(row (\d+) cannot be read\).*",
     lambda m: _("%(row)s行目が UTF-8 でも Shift_JIS でも読めません。"
                 "Excelで「CSV UTF-8」か「CSV(コンマ区切り)」で保存してください。", row=m[1])),
    (r"The file holds the control character \S+ in row (\d+): .*",
     lambda m: _("%(row)s行目に制御文字(NULなど)があり、CSVのテキストではないようです。"
                 "Excelで「CSV UTF-8」か「CSV(コンマ区切り)」で保存してください。", row=m[1])),
    (r"The body is not valid (\S+) as its Content-Type says \(row (\d+), byte \d+\).*",
     lambda m: _("%(row)s行目が %(charset)s として読めません。", row=m[2], charset=m[1])),
    (r"The file is empty: it has no header row\.|The body is empty: .*",
     lambda m: _("ファイルが空です。1行目に見出しのあるCSVファイルを選んでください。")),
    (r"The file has a header row but no residents below it\.",
     lambda m: _("見出しの行だけで、利用者の行がありません。")),
    (r"More than (\d+) residents in one file: .*",
     lambda m: _("1つのファイルで取り込めるのは%(n)s人までです。ファイルを分けてください。", n=m[1])),
    (r'The quote \(\"\) that opens this cell is never closed, .*',
     lambda m: _("この欄の始めの引用符 \" が閉じられていないため、これより後の行が読めません。"
                 "引用符を閉じるか、欄の中の \" は \"\" と2つ続けて書いてください。")),
    (r'Text follows the closing quote \(\"\) of this cell: .*',
     lambda m: _("引用符 \" で囲んだ後ろに文字が続いています。"
                 "欄の中の \" は \"\" と2つ続けて書くか、欄全体を \" で囲んでください。")),
    (r"A cell is longer than (\d+) characters\.",
     lambda m: _("%(n)s文字を超える欄があります。", n=m[1])),
    (r"The row cannot be read as CSV: .*", lambda m: _("この行はCSVとして読めません。")),
    (r'(Longer than (\d+) characters|Lines inside this cell look like rows of the file|'
     r'A line break inside this cell): is a closing quote \(\"\) missing in this row\?',
     lambda m: (_("%(n)s文字を超えています。", n=m[2]) if m[2]
                else _("欄の中に、ほかの行のような改行とコンマがあります。") if m[1].startswith("Lines")
                else _("欄の中に改行があります。"))
     + _("この行で引用符 \" の閉じ忘れはありませんか?")),
    (r"Another import for this tenant is still running; try again in a minute\.",
     lambda m: _("ほかの取り込みを実行中です。1分ほど待ってから、もう一度お試しください。")),
    (r"These residents changed while the file was imported; import it again\.",
     lambda m: _("取り込み中に利用者が変更されました。もう一度取り込んでください。")),
]]


def localise(message: str) -> str:
    """The message with every known English phrase in the staff member's language."""
    for pattern, say in _PATTERNS:
        message = pattern.sub(say, message)
    return message
