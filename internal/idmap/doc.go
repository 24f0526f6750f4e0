// Package idmap gives a sandbox that runs as one host user write access
// to a host directory as the directory's owner, through an idmapped
// mount (Linux 5.12 and later): a view of the directory in which the
// directory owner's uid and gid appear as the sandbox's, so that what the
// sandbox writes there belongs to the owner on the host, as podman's
// keep-id gives.
//
// A view shows one directory and what lies on the same file system below
// it (mounts below it are not part of it), is attached under a staging
// directory of Warden's own, never allows set-user-ID execution or device
// files, and is removed by [Mount.Unmount] or, once the Warden that made
// it is gone, by [Stager.RemoveOrphans]. See docs/adr/0013-writable-mounts.md.
package idmap
