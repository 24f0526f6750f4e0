package e2b

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/filesystempb"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/filesystempb/filesystempbconnect"
)

// filesystemService is filesystem.Filesystem over Warden's file API, on
// the sandbox's home directory (its workspace).
type filesystemService struct {
	filesystempbconnect.UnimplementedFilesystemHandler
	s *Server
}

// errNoWatch answers the watch methods.
var errNoWatch = connect.NewError(connect.CodeUnimplemented, errors.New("watching directories is not supported by Warden"))

// call resolves the request's sandbox and path.
func (f *filesystemService) call(ctx context.Context, p string) (*box, string, error) {
	ref, _ := boxFrom(ctx)
	rel, err := ref.b.wardenPath(p)
	if err != nil {
		return ref.b, "", f.s.rpcError(ctx, ref.b, err)
	}
	return ref.b, rel, nil
}

// fail maps err onto a Connect error; a missing file is named by the path
// the caller knows.
func (f *filesystemService) fail(ctx context.Context, b *box, rel string, err error) error {
	if errors.Is(err, client.ErrNotFound) && !f.s.gone(ctx, b) {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("path %s does not exist", e2bPath(rel)))
	}
	return f.s.rpcError(ctx, b, err)
}

func (f *filesystemService) Stat(ctx context.Context, req *connect.Request[filesystempb.StatRequest]) (*connect.Response[filesystempb.StatResponse], error) {
	b, rel, err := f.call(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, err
	}
	e, err := f.s.c.Stat(ctx, b.wardenID, rel)
	if err != nil {
		return nil, f.fail(ctx, b, rel, err)
	}
	return connect.NewResponse(&filesystempb.StatResponse{Entry: entryInfo(e)}), nil
}

func (f *filesystemService) MakeDir(ctx context.Context, req *connect.Request[filesystempb.MakeDirRequest]) (*connect.Response[filesystempb.MakeDirResponse], error) {
	b, rel, err := f.call(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, err
	}
	if rel == "" {
		return nil, connect.NewError(connect.CodeAlreadyExists, errors.New("directory "+home+" already exists"))
	}
	e, err := f.s.c.MakeDir(ctx, b.wardenID, rel)
	if errors.Is(err, client.ErrConflict) {
		// Something is there already (SDK: makeDir returns false), or a
		// parent is a file (an invalid argument).
		if _, serr := f.s.c.Stat(ctx, b.wardenID, rel); serr == nil {
			return nil, connect.NewError(connect.CodeAlreadyExists, errors.New(messageOf(err)))
		}
	}
	if err != nil {
		return nil, f.fail(ctx, b, rel, err)
	}
	return connect.NewResponse(&filesystempb.MakeDirResponse{Entry: entryInfo(e)}), nil
}

func (f *filesystemService) Move(ctx context.Context, req *connect.Request[filesystempb.MoveRequest]) (*connect.Response[filesystempb.MoveResponse], error) {
	b, src, err := f.call(ctx, req.Msg.GetSource())
	if err != nil {
		return nil, err
	}
	_, dst, err := f.call(ctx, req.Msg.GetDestination())
	if err != nil {
		return nil, err
	}
	if src == "" || dst == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("the home directory itself cannot be moved or replaced"))
	}
	e, err := f.s.c.Move(ctx, b.wardenID, src, dst)
	if err != nil {
		return nil, f.fail(ctx, b, src, err)
	}
	return connect.NewResponse(&filesystempb.MoveResponse{Entry: entryInfo(e)}), nil
}

// maxDepth is the deepest listing Warden's API makes.
const maxDepth = 10

func (f *filesystemService) ListDir(ctx context.Context, req *connect.Request[filesystempb.ListDirRequest]) (*connect.Response[filesystempb.ListDirResponse], error) {
	b, rel, err := f.call(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, err
	}
	depth := max(1, int(req.Msg.GetDepth()))
	if depth > maxDepth {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("depth is at most 10 in Warden"))
	}
	list, err := f.s.c.ListFilesDepth(ctx, b.wardenID, rel, depth)
	if err != nil {
		return nil, f.fail(ctx, b, rel, err)
	}
	out := &filesystempb.ListDirResponse{Entries: make([]*filesystempb.EntryInfo, 0, len(list.Entries))}
	for _, e := range list.Entries {
		if e.Path == "" { // a server without paths in listings
			e.Path = path.Join(list.Path, e.Name)
		}
		out.Entries = append(out.Entries, entryInfo(e))
	}
	return connect.NewResponse(out), nil
}

func (f *filesystemService) Remove(ctx context.Context, req *connect.Request[filesystempb.RemoveRequest]) (*connect.Response[filesystempb.RemoveResponse], error) {
	b, rel, err := f.call(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, err
	}
	if rel == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("the home directory itself cannot be removed"))
	}
	if err := f.s.c.Remove(ctx, b.wardenID, rel); err != nil {
		return nil, f.fail(ctx, b, rel, err)
	}
	return connect.NewResponse(&filesystempb.RemoveResponse{}), nil
}

func (f *filesystemService) WatchDir(context.Context, *connect.Request[filesystempb.WatchDirRequest], *connect.ServerStream[filesystempb.WatchDirResponse]) error {
	return errNoWatch
}

func (f *filesystemService) CreateWatcher(context.Context, *connect.Request[filesystempb.CreateWatcherRequest]) (*connect.Response[filesystempb.CreateWatcherResponse], error) {
	return nil, errNoWatch
}

func (f *filesystemService) GetWatcherEvents(context.Context, *connect.Request[filesystempb.GetWatcherEventsRequest]) (*connect.Response[filesystempb.GetWatcherEventsResponse], error) {
	return nil, errNoWatch
}

func (f *filesystemService) RemoveWatcher(context.Context, *connect.Request[filesystempb.RemoveWatcherRequest]) (*connect.Response[filesystempb.RemoveWatcherResponse], error) {
	return nil, errNoWatch
}

// entryInfo describes a workspace entry as envd does: its absolute path
// inside the sandbox, its mode as Go's fs.FileMode bits, the ls-style
// permissions, and a symlink's target as an absolute path.
func entryInfo(e api.FileEntry) *filesystempb.EntryInfo {
	p := e2bPath(e.Path)
	mode := fs.FileMode(e.Mode).Perm()
	typ := filesystempb.FileType_FILE_TYPE_UNSPECIFIED
	switch e.Type {
	case api.FileTypeFile:
		typ = filesystempb.FileType_FILE_TYPE_FILE
	case api.FileTypeDir:
		typ, mode = filesystempb.FileType_FILE_TYPE_DIRECTORY, mode|fs.ModeDir
	case api.FileTypeSymlink:
		typ, mode = filesystempb.FileType_FILE_TYPE_SYMLINK, mode|fs.ModeSymlink
	case api.FileTypeOther:
		mode |= fs.ModeIrregular
	}
	info := &filesystempb.EntryInfo{
		Name:         path.Base(p),
		Type:         typ,
		Path:         p,
		Size:         e.Size,
		Mode:         uint32(mode),
		Permissions:  mode.String(),
		Owner:        "user",
		Group:        "user",
		ModifiedTime: timestamppb.New(e.ModTime),
	}
	if e.Type == api.FileTypeSymlink {
		t := e.LinkTarget
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		info.SymlinkTarget = &t
	}
	return info
}
