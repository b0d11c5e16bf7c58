"""The dashboard's blueprints, registered by admin_ui.init_admin."""

from admin_ui.views.auth import blueprint as auth_blueprint
from admin_ui.views.console import blueprint as console_blueprint
from admin_ui.views.dashboard import blueprint as dashboard_blueprint

blueprints = [auth_blueprint, dashboard_blueprint, console_blueprint]
