-- Quarto's callouts for the offline site: `::: {.callout-tip}` gets a title (its `title` attribute, else its first
-- heading, which then stays out of the table of contents, else the kind's name) and a body, as Quarto draws them.
local KINDS = {['callout-note'] = 'Note', ['callout-tip'] = 'Tip', ['callout-warning'] = 'Warning',
               ['callout-important'] = 'Important', ['callout-caution'] = 'Caution'}

function Div(div)
  for _, class in ipairs(div.classes) do
    if KINDS[class] then
      local title = pandoc.Inlines(KINDS[class])
      if div.attributes.title then
        title = pandoc.utils.blocks_to_inlines(pandoc.read(div.attributes.title).blocks)
        div.attributes.title = nil
      elseif div.content[1] and div.content[1].t == 'Header' then
        title = div.content[1].content
        div.content:remove(1)
      end
      div.classes:insert(1, 'callout')
      return pandoc.Div({pandoc.Div(pandoc.Plain(title), {class = 'callout-title'}),
                         pandoc.Div(div.content, {class = 'callout-body'})}, div.attr)
    end
  end
end
