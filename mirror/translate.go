package mirror

import (
	"context"
	"fmt"
	"sort"

	"github.com/IBM/sarama"
)

// Mapping is one partition of a consumer group's translated position.
type Mapping struct {
	Topic        string // source topic
	RemoteTopic  string // topic on the target
	Partition    int32
	SourceOffset int64 // committed on the source
	TargetOffset int64 // where the group resumes on the target
	Translated   bool  // false: the mirror has not copied up to SourceOffset yet
}

// TranslateGroup reads group's committed offsets on the source and
// translates every mirrored partition through the flow's offset-sync topic
// on the target. It needs no running flow: any process can call it.
func (f *Flow) TranslateGroup(ctx context.Context, group string) ([]Mapping, error) {
	src, err := sarama.NewClusterAdmin(f.opts.SourceBrokers, f.sourceConfig())
	if err != nil {
		return nil, fmt.Errorf("mirror: source %v: %w", f.opts.SourceBrokers, err)
	}
	defer src.Close()
	tgt, err := sarama.NewClient(f.opts.TargetBrokers, f.targetConfig())
	if err != nil {
		return nil, fmt.Errorf("mirror: target %v: %w", f.opts.TargetBrokers, err)
	}
	defer tgt.Close()
	if err := f.loadSyncs(ctx, tgt); err != nil {
		return nil, fmt.Errorf("mirror: flow %q: read offset syncs: %w", f.opts.Name, err)
	}
	resp, err := src.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		return nil, fmt.Errorf("mirror: group %q on source: %w", group, err)
	}
	var out []Mapping
	for topic, parts := range groupBlocks(resp, group) {
		if !f.opts.Selector.Match(topic) {
			continue
		}
		for p, b := range parts {
			if b == nil || b.Offset < 0 {
				continue
			}
			off, ok := f.translator.Translate(topic, p, b.Offset)
			out = append(out, Mapping{Topic: topic, RemoteTopic: f.opts.Naming.Remote(f.opts.SourceAlias, topic),
				Partition: p, SourceOffset: b.Offset, TargetOffset: off, Translated: ok})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
