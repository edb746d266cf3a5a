from django.urls import path

from .views import auth, data, security, twofactor

app_name = "accounts"

urlpatterns = [
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("register/", auth.register, name="register"),
    path("recover/", security.recover, name="recover"),
    path("2fa/setup/", twofactor.setup, name="2fa-setup"),
    path("2fa/verify/", twofactor.verify, name="2fa-verify"),
    path("2fa/recovery/", twofactor.recovery_login, name="2fa-recovery"),
    path("settings/", security.settings_page, name="settings"),
    path("settings/password/", security.password_change, name="password-change"),
    path("settings/preferences/", security.preferences_page, name="preferences"),
    path("settings/recovery-codes/", security.regenerate_codes, name="regenerate-codes"),
    path("settings/strict-mode/", security.strict_mode, name="strict-mode"),
    path("settings/delete-account/", data.delete_account, name="delete-account"),
]
