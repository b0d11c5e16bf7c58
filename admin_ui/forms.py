"""Sign-in forms (Flask-WTF: every form carries and checks a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from schemas.tenants import MIN_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("パスワード"), validators=[DataRequired(), Length(max=256)])


class CodeForm(FlaskForm):
    code = StringField(_l("確認コード(6桁)"), validators=[
        DataRequired(), Regexp(r"^\s*\d{6}\s*$", message=_l("6桁の数字を入力してください。"))])


class PasswordForm(FlaskForm):
    password = PasswordField(_l("新しいパスワード"), validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256,
                               message=_l("%(n)s文字以上にしてください。", n=MIN_PASSWORD_LENGTH))])
    confirm = PasswordField(_l("新しいパスワード(確認)"), validators=[
        EqualTo("password", message=_l("確認用のパスワードが一致しません。"))])
