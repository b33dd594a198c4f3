package apply

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StatusInventoryBudget is the most status.inventory may take, encoded as
// JSON. etcd refuses objects over 1.5 MiB by default ("request is too
// large"); past this budget, well below it, the whole inventory is kept in
// ConfigMaps beside the Kustomization (see InventoryStore) and the status
// lists only the entries that fit.
const StatusInventoryBudget = 256 << 10

// ExternalInventoryCondition is True on a Kustomization whose inventory is
// too large for its status and is kept in ConfigMaps (see InventoryStore):
// status.inventory then lists only part of it.
const ExternalInventoryCondition = "ExternalInventory"

// InventoryTooLargeReason is the reason of ExternalInventoryCondition.
const InventoryTooLargeReason = "InventoryTooLarge"

// Annotations of the ConfigMaps that hold an inventory.
const (
	// InventoryOfAnnotation names the Kustomization, as <namespace>/<name>.
	InventoryOfAnnotation = "weir.dev/inventory-of"
	// inventoryPartsAnnotation is the number of ConfigMaps the inventory
	// is split into, on the first.
	inventoryPartsAnnotation = "weir.dev/inventory-parts"
	// inventoryDigestAnnotation is the sha256 of the whole compressed
	// inventory, on every part, so that parts of two writes never mix.
	inventoryDigestAnnotation = "weir.dev/inventory-digest"
	// inventoryKey is the binaryData key of a part.
	inventoryKey = "inventory.json.gz"
)

const (
	// partSize is the most compressed bytes one ConfigMap holds (the API
	// server takes at most 1 MiB of data per ConfigMap).
	partSize = 768 << 10
	// maxInventoryBytes bounds an inventory once decompressed.
	maxInventoryBytes = 256 << 20
)

// InventorySize is the size of inv encoded as JSON in the status.
func InventorySize(inv *kustomizev1.ResourceInventory) int {
	if inv == nil {
		return 0
	}
	n := len(`{"entries":[]}`)
	for _, e := range inv.Entries {
		n += entrySize(e)
	}
	return n
}

func entrySize(e kustomizev1.ResourceRef) int {
	return len(`{"id":"","v":""},`) + len(e.ID) + len(e.Version)
}

// StatusPart returns what of inv fits in budget bytes: the entries of
// Flux's own kinds first (Kustomizations, HelmReleases and sources, so that
// `flux tree` still walks the tree), then the others in order, sorted as an
// inventory is.
func StatusPart(inv *kustomizev1.ResourceInventory, budget int) *kustomizev1.ResourceInventory {
	entries := append([]kustomizev1.ResourceRef(nil), inv.Entries...)
	flux := func(e kustomizev1.ResourceRef) bool {
		return strings.Contains(e.Version, ".toolkit.fluxcd.io/")
	}
	sort.SliceStable(entries, func(i, j int) bool { return flux(entries[i]) && !flux(entries[j]) })
	out := &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{}}
	size := InventorySize(out)
	for _, e := range entries {
		if size+entrySize(e) > budget {
			break
		}
		size += entrySize(e)
		out.Entries = append(out.Entries, e)
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].ID < out.Entries[j].ID })
	return out
}

// InventoryStore keeps inventories too large for a status in ConfigMaps in
// the Kustomization's namespace, owned by it (so that they go when it
// goes), compressed, and split across several ConfigMaps when needed:
// <name>.weir-inventory, <name>.weir-inventory.1, ...
type InventoryStore struct {
	// Client writes the ConfigMaps; Reader reads them, from the API
	// server rather than a cache.
	Client client.Client
	Reader client.Reader
}

// InventoryConfigMap is the name of the first ConfigMap that holds the
// inventory of the Kustomization name.
func InventoryConfigMap(name string) string { return partName(name, 0) }

func partName(name string, i int) string {
	const suffix = ".weir-inventory"
	const room = 253 - len(suffix) - len(".999")
	if len(name) > room {
		sum := sha256.Sum256([]byte(name))
		name = name[:room-9] + "-" + hex.EncodeToString(sum[:4])
	}
	if i == 0 {
		return name + suffix
	}
	return name + suffix + "." + strconv.Itoa(i)
}

// Save writes inv for ks, replacing what was kept before, and removes the
// parts a larger inventory left.
func (s InventoryStore) Save(ctx context.Context, ks *kustomizev1.Kustomization, inv *kustomizev1.ResourceInventory) error {
	raw, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encoding the inventory: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return fmt.Errorf("compressing the inventory: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing the inventory: %w", err)
	}
	data := buf.Bytes()
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	parts := (len(data) + partSize - 1) / partSize
	for i := 0; i < parts; i++ {
		end := min((i+1)*partSize, len(data))
		if err := s.writePart(ctx, ks, i, parts, digest, data[i*partSize:end]); err != nil {
			return err
		}
	}
	// Parts of an earlier, larger inventory.
	for i := parts; ; i++ {
		cm := &corev1.ConfigMap{}
		err := s.Reader.Get(ctx, client.ObjectKey{Namespace: ks.Namespace, Name: partName(ks.Name, i)}, cm)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading ConfigMap %s/%s: %w", ks.Namespace, cm.Name, err)
		}
		if !ownedBy(cm, ks) {
			return nil
		}
		if err := s.Client.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting ConfigMap %s/%s, a part of an earlier inventory: %w", ks.Namespace, cm.Name, err)
		}
	}
}

func (s InventoryStore) writePart(ctx context.Context, ks *kustomizev1.Kustomization, i, parts int, digest string, data []byte) error {
	key := client.ObjectKey{Namespace: ks.Namespace, Name: partName(ks.Name, i)}
	cm := &corev1.ConfigMap{}
	err := s.Reader.Get(ctx, key, cm)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	exists := err == nil
	if exists && !ownedBy(cm, ks) {
		return fmt.Errorf("ConfigMap %s, where the inventory of this Kustomization is kept when it is too large for the status, exists and does not belong to it: rename or remove that ConfigMap", key)
	}
	cm.Name, cm.Namespace = key.Name, key.Namespace
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[InventoryOfAnnotation] = ks.Namespace + "/" + ks.Name
	cm.Annotations[inventoryDigestAnnotation] = digest
	if i == 0 {
		cm.Annotations[inventoryPartsAnnotation] = strconv.Itoa(parts)
	}
	cm.OwnerReferences = []metav1.OwnerReference{{
		APIVersion:         kustomizev1.GroupVersion.String(),
		Kind:               kustomizev1.KustomizationKind,
		Name:               ks.Name,
		UID:                ks.UID,
		BlockOwnerDeletion: ptr.To(false),
	}}
	cm.Data = nil
	cm.BinaryData = map[string][]byte{inventoryKey: data}
	if exists {
		err = s.Client.Update(ctx, cm)
	} else {
		err = s.Client.Create(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("writing the inventory to ConfigMap %s: %w", key, err)
	}
	return nil
}

// Of returns the whole inventory of ks: status.inventory, or what the
// ConfigMaps hold when ExternalInventoryCondition says it is kept there.
// An error that wraps ErrNoInventory means those ConfigMaps are gone or
// damaged.
func (s InventoryStore) Of(ctx context.Context, ks *kustomizev1.Kustomization) (*kustomizev1.ResourceInventory, error) {
	if !conditions.IsTrue(ks, ExternalInventoryCondition) {
		return ks.Status.Inventory, nil
	}
	inv, err := s.Load(ctx, ks)
	if err != nil {
		return nil, fmt.Errorf("reading the inventory kept in ConfigMap %s/%s: %w", ks.Namespace, InventoryConfigMap(ks.Name), err)
	}
	return inv, nil
}

// ErrNoInventory is returned by Load when no inventory of the
// Kustomization is kept, or what is kept cannot be read back whole.
var ErrNoInventory = errors.New("no readable inventory")

// Load reads back what Save wrote for ks.
func (s InventoryStore) Load(ctx context.Context, ks *kustomizev1.Kustomization) (*kustomizev1.ResourceInventory, error) {
	first, err := s.part(ctx, ks, 0)
	if err != nil {
		return nil, err
	}
	parts, err := strconv.Atoi(first.Annotations[inventoryPartsAnnotation])
	if err != nil || parts < 1 {
		return nil, fmt.Errorf("%w: ConfigMap %s/%s does not say how many parts it has", ErrNoInventory, ks.Namespace, first.Name)
	}
	digest := first.Annotations[inventoryDigestAnnotation]
	var data []byte
	for i := 0; i < parts; i++ {
		cm := first
		if i > 0 {
			if cm, err = s.part(ctx, ks, i); err != nil {
				return nil, err
			}
		}
		if cm.Annotations[inventoryDigestAnnotation] != digest {
			return nil, fmt.Errorf("%w: ConfigMap %s/%s is from another write than the first part", ErrNoInventory, ks.Namespace, cm.Name)
		}
		data = append(data, cm.BinaryData[inventoryKey]...)
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("%w: the parts in ConfigMap %s/%s... do not match their digest", ErrNoInventory, ks.Namespace, first.Name)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing ConfigMap %s/%s: %v", ErrNoInventory, ks.Namespace, first.Name, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxInventoryBytes+1))
	if err != nil || len(raw) > maxInventoryBytes {
		return nil, fmt.Errorf("%w: decompressing ConfigMap %s/%s: %v", ErrNoInventory, ks.Namespace, first.Name, err)
	}
	inv := &kustomizev1.ResourceInventory{}
	if err := json.Unmarshal(raw, inv); err != nil {
		return nil, fmt.Errorf("%w: decoding ConfigMap %s/%s: %v", ErrNoInventory, ks.Namespace, first.Name, err)
	}
	return inv, nil
}

func (s InventoryStore) part(ctx context.Context, ks *kustomizev1.Kustomization, i int) (*corev1.ConfigMap, error) {
	key := client.ObjectKey{Namespace: ks.Namespace, Name: partName(ks.Name, i)}
	cm := &corev1.ConfigMap{}
	err := s.Reader.Get(ctx, key, cm)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: ConfigMap %s not found", ErrNoInventory, key)
	}
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	if !ownedBy(cm, ks) {
		return nil, fmt.Errorf("%w: ConfigMap %s does not belong to this Kustomization", ErrNoInventory, key)
	}
	return cm, nil
}

// Delete removes the ConfigMaps that hold the inventory of ks, if any.
func (s InventoryStore) Delete(ctx context.Context, ks *kustomizev1.Kustomization) error {
	for i := 0; ; i++ {
		cm, err := s.part(ctx, ks, i)
		if errors.Is(err, ErrNoInventory) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Client.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
}

func ownedBy(cm *corev1.ConfigMap, ks *kustomizev1.Kustomization) bool {
	for _, o := range cm.OwnerReferences {
		if o.Kind == kustomizev1.KustomizationKind && o.UID == ks.UID {
			return true
		}
	}
	return false
}
