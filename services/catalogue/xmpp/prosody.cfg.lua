-- Prosody configuration of node {{ node.name }}, rendered by the Byzantium
-- portal from services/catalogue/xmpp/prosody.cfg.lua.
pidfile = "{{ paths.run_dir }}/prosody.pid"
data_path = "{{ paths.data_dir }}"
log = { info = "*console" }

interfaces = { {% for address in listen.all %}"{{ address }}"; {% endfor %}}
c2s_ports = { {{ ports.xmpp }} }
c2s_direct_tls_ports = { {{ ports.xmpps }} }
s2s_ports = { }
-- HTTP only on the node's loopback: the web chat's nginx (service
-- "webchat") forwards XMPP over WebSocket to it; nothing else is served.
http_ports = { 5280 }
http_interfaces = { "127.0.0.1" }
https_ports = { }
https_interfaces = { }
-- The browser reaches the node's nginx over the mesh; Prosody sees the
-- loopback hop only. c2s_require_encryption stays for the TCP clients.
consider_websocket_secure = true

admins = { }
modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "carbons"; "pep"; "private";
	"blocklist"; "vcard4"; "vcard_legacy"; "version"; "uptime"; "time";
	"ping"; "register"; "mam"; "csi_simple"; "smacks"; "websocket";
	-- Every client, app or web chat guest, sends at most 10 kB/s (bursts
	-- of 2 s): plenty for text, a brake on a flood from one phone.
	"limits";
}
modules_disabled = { "s2s" }

allow_registration = {% if settings.registration %}true{% else %}false{% endif %}
-- A burst of registrations from one address is throttled.
min_seconds_between_registrations = 30
c2s_require_encryption = true
s2s_require_encryption = true
authentication = "internal_hashed"
storage = "internal"
archive_expires_after = "1w"

ssl = {
	certificate = "{{ paths.tls_cert }}";
	key = "{{ paths.tls_key }}";
}

VirtualHost "{{ node.name }}.mesh"

-- Guests of the web chat: a throw-away account for as long as the page
-- is open, no password, no registration, never to other servers.
VirtualHost "guest.{{ node.name }}.mesh"
	authentication = "anonymous"
	allow_registration = false
	allow_anonymous_s2s = false
	modules_disabled = { "s2s"; "register"; "mam" }

Component "conference.{{ node.name }}.mesh" "muc"
	modules_enabled = { "muc_mam" }
	restrict_room_creation = false
