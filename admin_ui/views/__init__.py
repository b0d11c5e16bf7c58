"""The dashboard's blueprints, registered by admin_ui.init_admin."""

from admin_ui.views.audit import blueprint as audit_blueprint
from admin_ui.views.auth import blueprint as auth_blueprint
from admin_ui.views.broadcasts import blueprint as broadcasts_blueprint
from admin_ui.views.chains import blueprint as chains_blueprint
from admin_ui.views.console import blueprint as console_blueprint
from admin_ui.views.dashboard import blueprint as dashboard_blueprint
from admin_ui.views.earthquakes import blueprint as earthquakes_blueprint
from admin_ui.views.groups import blueprint as groups_blueprint
from admin_ui.views.imports import blueprint as imports_blueprint
from admin_ui.views.incidents import blueprint as incidents_blueprint
from admin_ui.views.policies import blueprint as policies_blueprint
from admin_ui.views.residents import blueprint as residents_blueprint
from admin_ui.views.rounds import blueprint as rounds_blueprint
from admin_ui.views.simulator import blueprint as simulator_blueprint
from admin_ui.views.staff import blueprint as staff_blueprint
from admin_ui.views.stats import blueprint as stats_blueprint

blueprints = [auth_blueprint, dashboard_blueprint, console_blueprint, staff_blueprint]
# Check policies, alert chains, rounds, statistics, audit log and the resident simulator.
blueprints += [policies_blueprint, chains_blueprint, rounds_blueprint, stats_blueprint,
               audit_blueprint, simulator_blueprint]
# Incidents, residents, the CSV import, groups and broadcasts.
blueprints += [incidents_blueprint, residents_blueprint, imports_blueprint, groups_blueprint,
               broadcasts_blueprint]
# Earthquake rounds: the JMA subscription and what each earthquake decided.
blueprints += [earthquakes_blueprint]
