package clients

import (
	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// scramClient adapts xdg-go/scram to sarama.SCRAMClient.
type scramClient struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func newSCRAM(mechanism sarama.SASLMechanism) func() sarama.SCRAMClient {
	gen := scram.SHA256
	if mechanism == sarama.SASLTypeSCRAMSHA512 {
		gen = scram.SHA512
	}
	return func() sarama.SCRAMClient { return &scramClient{gen: gen} }
}

func (c *scramClient) Begin(user, pass, authzID string) error {
	cl, err := c.gen.NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }
