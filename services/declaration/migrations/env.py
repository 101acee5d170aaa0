from alembic import context

from libs.common.migrate import run_env

run_env(context)
