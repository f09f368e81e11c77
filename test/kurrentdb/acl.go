package kurrentdb

import (
	"encoding/json"
	"strings"
)

// The stream operations an ACL grants, with their keys in "$acl".
type aclAction int

const (
	actRead      aclAction = iota // $r
	actWrite                      // $w
	actDelete                     // $d
	actMetaRead                   // $mr
	actMetaWrite                  // $mw
	numACLActions
)

var aclKeys = [numACLActions]string{"$r", "$w", "$d", "$mr", "$mw"}

var aclNames = [numACLActions]string{"read", "write", "delete", "metadata read", "metadata write"}

func (a aclAction) String() string { return aclNames[a] }

// streamACL is one ACL: per action the roles (user names or groups)
// granted it; nil when the ACL does not say (the next level decides), empty
// when it grants nobody.
type streamACL [numACLActions][]string

// The built-in default ACLs of KurrentDB 24.10 (SystemSettings.Default):
// user streams for every authenticated user, system streams for $admins.
var (
	defaultUserACL   = streamACL{{roleAll}, {roleAll}, {roleAll}, {roleAll}, {roleAll}}
	defaultSystemACL = streamACL{{roleAdmins}, {roleAdmins}, {roleAdmins}, {roleAdmins}, {roleAdmins}}
)

// The roles KurrentDB gives meaning to.
const (
	roleAll    = "$all"    // every authenticated user
	roleAdmins = "$admins" // bypasses every stream check
	roleOps    = "$ops"
)

// settingsStream holds the default ACLs ($userStreamAcl, $systemStreamAcl)
// in its last event.
const settingsStream = "$settings"

// parseACL reads an "$acl" object: each key a role or a list of roles.
// Unknown keys and values of other types are ignored, as the real server
// ignores what it cannot read; nil when raw is not an object.
func parseACL(raw json.RawMessage) *streamACL {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil
	}
	acl := &streamACL{}
	for a, key := range aclKeys {
		v, ok := obj[key]
		if !ok {
			continue
		}
		var one string
		var many []string
		switch {
		case json.Unmarshal(v, &one) == nil:
			acl[a] = []string{one}
		case json.Unmarshal(v, &many) == nil:
			acl[a] = append([]string{}, many...)
		}
	}
	return acl
}

// aclOf reads "$acl" of a stream's metadata JSON.
func aclOf(metadata []byte) *streamACL {
	var obj map[string]json.RawMessage
	if json.Unmarshal(metadata, &obj) != nil {
		return nil
	}
	return parseACL(obj["$acl"])
}

// defaultACLs reads $settings' last event: the default ACLs of user and
// system streams (nil where it says nothing).
func defaultACLs(settings []byte) (user, system *streamACL) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(settings, &obj) != nil {
		return nil, nil
	}
	return parseACL(obj["$userStreamAcl"]), parseACL(obj["$systemStreamAcl"])
}

// aclInputs reads what an access check of stream name needs: its own ACL
// (from $$name) and the last visible $settings event's data.
func (st *store) aclInputs(name string) (own *streamACL, settings []byte) {
	st.mu.Lock()
	if m := st.metaLocked(name, st.visible); m != nil {
		own = m.acl
	}
	st.mu.Unlock()
	_, locs, err := st.readStream(settingsStream, func(ss *streamState) (int64, int64, bool) { return ss.last, ss.last, true })
	if err != nil || len(locs) == 0 {
		return own, nil
	}
	if recs, err := st.fetch(locs, false); err == nil && len(recs) > 0 {
		settings = recs[0].Data
	}
	return own, settings
}

// allowed applies KurrentDB 24.10's legacy stream access policy
// (LegacyStreamPermissionAssertion) to principal p and action on stream:
//
//  1. anonymous callers may do nothing to streams (AllowAnonymousStreamAccess
//     is off by default);
//  2. writing or deleting $all is denied to everyone;
//  3. $$X: read and write are metadata read and write of X; delete is denied;
//  4. $admins (and the admin user) may do everything else;
//  5. otherwise the roles of the first ACL that names the action decide: the
//     stream's own ($acl in its metadata), then $settings' default for its
//     kind ($systemStreamAcl for $-streams, $all included; $userStreamAcl
//     for the others), then the built-in default; "$all" in the roles grants
//     every authenticated user, else one of p's roles (its name and groups)
//     must be listed.
func (s *Server) allowed(p principal, stream string, action aclAction) bool {
	if p.anonymous {
		return false
	}
	if stream == "" {
		stream = "$all"
	}
	if stream == "$all" && (action == actWrite || action == actDelete) {
		return false
	}
	if isMetaStream(stream) {
		switch action {
		case actRead:
			action = actMetaRead
		case actWrite:
			action = actMetaWrite
		default:
			return false
		}
		stream = strings.TrimPrefix(stream, "$$")
	}
	if p.admin() {
		return true
	}
	own, settings := s.store.aclInputs(stream)
	user, system := defaultACLs(settings)
	fallback, builtin := user, &defaultUserACL
	if strings.HasPrefix(stream, "$") {
		fallback, builtin = system, &defaultSystemACL
	}
	var roles []string
	for _, acl := range []*streamACL{own, fallback, builtin} {
		if acl != nil && acl[action] != nil {
			roles = acl[action]
			break
		}
	}
	for _, r := range roles {
		if r == roleAll || p.has(r) {
			return true
		}
	}
	return false
}
