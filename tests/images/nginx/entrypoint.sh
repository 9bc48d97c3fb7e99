#!/bin/bash
# Entry point of the test tier's nginx image, written from the official image's documented
# behaviour: when the command is nginx, render /etc/nginx/templates/*.template into conf.d
# (only the variables the environment defines are substituted, so nginx's own $variables
# survive) and run /docker-entrypoint.d/*.sh; then exec the command.
set -Eeuo pipefail

render_templates() {
	local template output defined
	defined=$(printf '${%s} ' $(env | cut -d= -f1))
	for template in /etc/nginx/templates/*.template; do
		output="/etc/nginx/conf.d/$(basename "$template" .template)"
		if [ -w /etc/nginx/conf.d ]; then
			envsubst "$defined" <"$template" >"$output"
			echo "$0: rendered $template to $output"
		else
			echo "$0: /etc/nginx/conf.d is not writable, $template not rendered" >&2
		fi
	done
}

run_scripts() {
	local script
	for script in /docker-entrypoint.d/*.sh; do
		if [ -x "$script" ]; then
			echo "$0: running $script"
			"$script"
		else
			echo "$0: ignoring $script, not executable"
		fi
	done
}

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
	shopt -s nullglob
	render_templates
	run_scripts
	echo "$0: ready for start up"
fi

exec "$@"
