package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/notify/receiver"
)

func newTriggerCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trigger",
		Short: "Send a test request to a webhook receiver",
	}
	var baseURL string
	rcv := &cobra.Command{
		Use:   "receiver NAME",
		Short: "Send a Receiver a request signed as its sender signs it, to check an installation",
		Long: "trigger receiver reads the Receiver and its token, builds the request its sender would send\n" +
			"(a push, or the first of spec.events, signed or authorized with the token as the type requires)\n" +
			"and posts it to --url followed by the Receiver's status.webhookPath. In a cluster, forward the\n" +
			"receiver first: kubectl -n flux-system port-forward svc/webhook-receiver 9292:80. weir up prints\n" +
			"its receiver's URL.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			obj := &notificationv1.Receiver{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: g.namespace, Name: args[0]}, obj); err != nil {
				return fmt.Errorf("reading Receiver %s/%s: %w", g.namespace, args[0], err)
			}
			token, err := receiver.Token(cmd.Context(), c, obj)
			if err != nil {
				return err
			}
			req, err := receiver.TestRequest(obj, token, baseURL)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "► sending a %s request to %s%s\n", obj.Spec.Type, strings.TrimSuffix(baseURL, "/"), obj.Status.WebhookPath)
			hc := &http.Client{Timeout: 30 * time.Second}
			resp, err := hc.Do(req.WithContext(cmd.Context()))
			if err != nil {
				return fmt.Errorf("sending the request: %w", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			msg := strings.TrimSpace(string(b))
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("the receiver answered %s: %s (its reason is in weir's log)", resp.Status, msg)
			}
			fmt.Fprintf(out, "✔ the receiver answered %s: %s\n", resp.Status, msg)
			return nil
		},
	}
	rcv.Flags().StringVar(&baseURL, "url", "http://localhost:9292", "base URL of the webhook receiver")
	cmd.AddCommand(rcv)
	return cmd
}
