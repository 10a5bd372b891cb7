"""The transformers adapter's forward arguments and outputs beyond the default forward: output_attentions, output_hidden_states, inputs_embeds, head_mask, arbitrary masks (a mixin of `TransformersAdapter`, which provides `self.transformers`,
`self.version`, `self.has`, `self.build` and `self._model`)."""


class SurfaceMethods:
    """Forward arguments and outputs beyond the default forward: output_attentions, output_hidden_states, inputs_embeds, head_mask, arbitrary masks."""
