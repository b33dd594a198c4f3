package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// action is what a button asks for.
type action int

const (
	actionReconcile action = iota
	actionSuspend
	actionResume
)

func (a action) String() string {
	return [...]string{"reconcile", "suspend", "resume"}[a]
}

// actionRequest is the body of an action: the object it acts on.
type actionRequest struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// serveAction acts on one object through internal/control, as `weir
// reconcile`, `weir suspend` and `weir resume` do, with the client of the
// impersonated user when there is one, so that the API server's RBAC
// decides. The object is read from the cache: the user needs only the
// right to patch it.
func (s *Server) serveAction(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkCSRF(r); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "an action's body must be JSON (Content-Type: application/json)")
			return
		}
		var req actionRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "reading the action: "+err.Error())
			return
		}
		key := client.ObjectKey{Namespace: req.Namespace, Name: req.Name}
		obj, code, err := s.get(r.Context(), req.Kind, key)
		if err != nil {
			writeError(w, code, err.Error())
			return
		}
		var done string
		switch a {
		case actionReconcile:
			_, err = control.RequestReconcile(r.Context(), s.actor, obj)
			done = "reconcile requested"
		case actionSuspend:
			_, err = control.SetSuspend(r.Context(), s.actor, obj, true)
			done = "suspended"
		case actionResume:
			_, err = control.SetSuspend(r.Context(), s.actor, obj, false)
			done = "resumed, and a reconcile requested"
		}
		log := s.log.WithValues("action", a.String(), "kind", req.Kind, "namespace", req.Namespace, "name", req.Name)
		if s.actingAs != "" {
			log = log.WithValues("as", s.actingAs)
		}
		if err != nil {
			code := http.StatusBadGateway
			switch {
			case apierrors.IsForbidden(err):
				code = http.StatusForbidden
			case apierrors.IsNotFound(err):
				code = http.StatusNotFound
			case errors.Is(err, control.ErrSuspended):
				code = http.StatusConflict
			}
			log.Info("dashboard action refused", "error", err.Error())
			writeError(w, code, err.Error())
			return
		}
		log.Info("dashboard action")
		writeJSON(w, http.StatusOK, map[string]string{"message": fmt.Sprintf("%s %s: %s", req.Kind, key, done)})
	}
}
