package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
)

func newBuildCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Render what a Flux object would apply, offline",
	}
	var path, root string
	ks := &cobra.Command{
		Use:     "kustomization NAME --path DIR",
		Aliases: []string{"ks"},
		Short:   "Render a Kustomization from local files, with no cluster",
		Long: "build ks renders a Kustomization as weir's controller would: the Kustomization named NAME is\n" +
			"read from the repository's files (the Git root above --path, or --repo), --path is rendered with\n" +
			"its spec (patches, images, targetNamespace, postBuild substitutions from the ConfigMaps and\n" +
			"Secrets found in the repository), and the result is printed as YAML. Secret values are masked;\n" +
			"nothing is decrypted and no cluster is contacted.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return fmt.Errorf("--path is required: the local folder of the Kustomization's spec.path")
			}
			root, rel, err := resolvePath(path, root)
			if err != nil {
				return err
			}
			objects, err := repo.Manifests(root)
			if err != nil {
				return err
			}
			namespace := g.namespace
			if !cmd.Flags().Changed("namespace") {
				namespace = ""
			}
			obj, err := repo.FindKustomization(objects, namespace, args[0])
			if err != nil {
				return err
			}
			spec := obj.Spec
			spec.Path = "./" + filepath.ToSlash(rel)
			spec.Decryption = nil
			ns := obj.Namespace
			if ns == "" {
				ns = g.namespace
			}
			out, err := render.Build(cmd.Context(), render.Options{
				Root: root, Namespace: ns, Spec: spec, Values: render.Objects(objects), MaskSecrets: true,
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, o := range out {
				b, err := yaml.Marshal(o.Object)
				if err != nil {
					return fmt.Errorf("encoding %s/%s: %w", o.GetKind(), o.GetName(), err)
				}
				fmt.Fprintf(w, "---\n%s", b)
			}
			return nil
		},
	}
	ks.Flags().StringVar(&path, "path", "", "local folder to render (the Kustomization's spec.path in your checkout)")
	ks.Flags().StringVar(&root, "repo", "", "root of the repository (default: the Git root above --path)")
	cmd.AddCommand(ks)
	return cmd
}

// resolvePath makes path and root absolute (root defaulting to the Git
// root above path) and returns path relative to root, refusing a path
// outside it.
func resolvePath(path, root string) (string, string, error) {
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", "", fmt.Errorf("resolving --path: %w", err)
	}
	if root == "" {
		root = gitRoot(dir)
	}
	if root, err = filepath.Abs(root); err != nil {
		return "", "", fmt.Errorf("resolving --repo: %w", err)
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", "", fmt.Errorf("--path %s is not inside the repository %s", path, root)
	}
	return root, rel, nil
}

// gitRoot returns the closest folder at or above dir holding .git, or dir.
func gitRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
