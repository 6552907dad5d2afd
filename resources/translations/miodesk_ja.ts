<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="ja_JP">
<context>
    <name>AboutDialog</name>
    <message>
        <source>About MioDesk</source>
        <translation>MioDesk について</translation>
    </message>
    <message>
        <source>An offline reader: natural Japanese and English speech on your computer.</source>
        <translation>オフラインの読み上げアプリ：自然な日本語と英語の音声をこのパソコンで。</translation>
    </message>
    <message>
        <source>Versions and licences</source>
        <translation>バージョンとライセンス</translation>
    </message>
    <message>
        <source>MioDesk</source>
        <translation>MioDesk</translation>
    </message>
    <message>
        <source>MIT licence.</source>
        <translation>MIT ライセンス。</translation>
    </message>
    <message>
        <source>MioTTS models</source>
        <translation>MioTTS モデル</translation>
    </message>
    <message>
        <source>Licensed like their base models: 0.1B Falcon-LLM License; 0.4B, 1.2B and 2.6B LFM Open License v1.0; 0.6B and 1.7B Apache-2.0.</source>
        <translation>ベースモデルのライセンスに従います：0.1B は Falcon-LLM License、0.4B・1.2B・2.6B は LFM Open License v1.0、0.6B・1.7B は Apache-2.0。</translation>
    </message>
    <message>
        <source>MioCodec</source>
        <translation>MioCodec</translation>
    </message>
    <message>
        <source>MIT licence (code); see the model card for the weights.</source>
        <translation>MIT ライセンス（コード）。重みについてはモデルカードを参照してください。</translation>
    </message>
    <message>
        <source>Preset voices</source>
        <translation>プリセット音声</translation>
    </message>
    <message>
        <source>Audio made with the official preset voices may not be used commercially.</source>
        <translation>公式プリセット音声で作った音声は商用利用できません。</translation>
    </message>
    <message>
        <source>Your own voices</source>
        <translation>自分の声</translation>
    </message>
    <message>
        <source>You are responsible for the rights to the voice they were made from.</source>
        <translation>元になった声の権利はご自身の責任で管理してください。</translation>
    </message>
    <message>
        <source>Qt / PySide6</source>
        <translation>Qt / PySide6</translation>
    </message>
    <message>
        <source>LGPLv3.</source>
        <translation>LGPLv3。</translation>
    </message>
    <message>
        <source>Versions</source>
        <translation>バージョン</translation>
    </message>
    <message>
        <source>Licences</source>
        <translation>ライセンス</translation>
    </message>
    <message>
        <source>Nothing you read leaves this computer: MioDesk works offline once the models are downloaded.</source>
        <translation>読み上げる内容がこのパソコンの外に出ることはありません。モデルをダウンロードした後はオフラインで動きます。</translation>
    </message>
</context>
<context>
    <name>EmptyPage</name>
    <message>
        <source>Read anything aloud</source>
        <translation>なんでも読み上げ</translation>
    </message>
    <message>
        <source>Open a document or paste text, press Play, and follow the highlighted sentence.</source>
        <translation>文書を開くかテキストを貼り付けて再生すると、読んでいる文が強調表示されます。</translation>
    </message>
    <message>
        <source>Open a file…</source>
        <translation>ファイルを開く…</translation>
    </message>
    <message>
        <source>Paste and read</source>
        <translation>貼り付けて読む</translation>
    </message>
    <message>
        <source>Text, Markdown, HTML, EPUB, PDF and Word files. You can also drop a file on this window.</source>
        <translation>テキスト、Markdown、HTML、EPUB、PDF、Word ファイルに対応。このウィンドウにファイルをドロップしても開けます。</translation>
    </message>
</context>
<context>
    <name>ExportDialog</name>
    <message>
        <source>Export Audio</source>
        <translation>音声ファイルに書き出す</translation>
    </message>
    <message>
        <source>Output &amp;file:</source>
        <translation>出力ファイル(&amp;F):</translation>
    </message>
    <message>
        <source>&amp;Browse…</source>
        <translation>参照(&amp;B)…</translation>
    </message>
    <message>
        <source>Choose where the audio goes and its format</source>
        <translation>保存先とファイル形式を選びます</translation>
    </message>
    <message>
        <source>The extension picks the format: .m4b (audiobook), .m4a, .mp3, .opus, .flac or .wav</source>
        <translation>拡張子で形式が決まります: .m4b(オーディオブック)、.m4a、.mp3、.opus、.flac、.wav</translation>
    </message>
    <message>
        <source>&amp;Voice:</source>
        <translation>声(&amp;V):</translation>
    </message>
    <message>
        <source>&amp;Dialogue voice:</source>
        <translation>会話の声(&amp;D):</translation>
    </message>
    <message>
        <source>Text inside 「…」, 『…』 and &quot;…&quot; is read in this voice</source>
        <translation>「…」『…』&quot;…&quot; の中をこの声で読みます</translation>
    </message>
    <message>
        <source>S&amp;peed:</source>
        <translation>速さ(&amp;P):</translation>
    </message>
    <message>
        <source>×</source>
        <translation>倍</translation>
    </message>
    <message>
        <source>Subti&amp;tles:</source>
        <translation>字幕(&amp;T):</translation>
    </message>
    <message>
        <source>Where to start</source>
        <translation>開始位置</translation>
    </message>
    <message>
        <source>From the beginnin&amp;g</source>
        <translation>最初から(&amp;G)</translation>
    </message>
    <message>
        <source>&amp;Start</source>
        <translation>開始(&amp;S)</translation>
    </message>
    <message>
        <source>Make the audio file</source>
        <translation>音声ファイルを作ります</translation>
    </message>
    <message>
        <source>C&amp;ancel Export</source>
        <translation>書き出しを中止(&amp;A)</translation>
    </message>
    <message>
        <source>Stop the export; the work done so far is kept for the next one</source>
        <translation>書き出しを止めます。ここまでの作業は次回のために残ります</translation>
    </message>
    <message>
        <source>&amp;Open Folder</source>
        <translation>フォルダーを開く(&amp;O)</translation>
    </message>
    <message>
        <source>Export progress</source>
        <translation>書き出しの進み具合</translation>
    </message>
    <message>
        <source>Export %p %</source>
        <translation>書き出し %p %</translation>
    </message>
    <message>
        <source>%p %</source>
        <translation>%p %</translation>
    </message>
    <message>
        <source>Export status</source>
        <translation>書き出しの状況</translation>
    </message>
    <message>
        <source>None</source>
        <translation>なし</translation>
    </message>
    <message>
        <source>SubRip (.srt)</source>
        <translation>SubRip (.srt)</translation>
    </message>
    <message>
        <source>WebVTT (.vtt)</source>
        <translation>WebVTT (.vtt)</translation>
    </message>
    <message>
        <source>Lyrics (.lrc)</source>
        <translation>歌詞形式 (.lrc)</translation>
    </message>
    <message>
        <source>(none)</source>
        <translation>(なし)</translation>
    </message>
    <message>
        <source>Reading voices (Settings › Voices)</source>
        <translation>読み上げの声(設定 › 声)</translation>
    </message>
    <message>
        <source>Reading voice: {0}</source>
        <translation>読み上げの声: {0}</translation>
    </message>
    <message>
        <source>Reading voices: {0} · {1}</source>
        <translation>読み上げの声: {0} · {1}</translation>
    </message>
    <message>
        <source>From the c&amp;ursor</source>
        <translation>カーソル位置から(&amp;U)</translation>
    </message>
    <message>
        <source>From the c&amp;ursor (sentence {0} of {1})</source>
        <translation>カーソル位置から(&amp;U)({1} 文中 {0} 文目)</translation>
    </message>
    <message>
        <source>Written next to the audio: {0}</source>
        <translation>音声と同じ場所に保存: {0}</translation>
    </message>
    <message>
        <source>Export audio to</source>
        <translation>音声の書き出し先</translation>
    </message>
    <message>
        <source>Audiobook, AAC</source>
        <translation>オーディオブック(AAC)</translation>
    </message>
    <message>
        <source>AAC audio</source>
        <translation>AAC 音声</translation>
    </message>
    <message>
        <source>MP3 audio</source>
        <translation>MP3 音声</translation>
    </message>
    <message>
        <source>Ogg Opus audio</source>
        <translation>Ogg Opus 音声</translation>
    </message>
    <message>
        <source>FLAC audio, lossless</source>
        <translation>FLAC 音声(可逆圧縮)</translation>
    </message>
    <message>
        <source>WAV audio, uncompressed</source>
        <translation>WAV 音声(非圧縮)</translation>
    </message>
    <message>
        <source>Enter the file to export to, for example book.m4b.</source>
        <translation>書き出し先のファイル名を入力してください(例: book.m4b)。</translation>
    </message>
    <message>
        <source>Open a document first.</source>
        <translation>先に文書を開いてください。</translation>
    </message>
    <message>
        <source>Exporting to {0}.</source>
        <translation>{0} に書き出しています。</translation>
    </message>
    <message>
        <source>{0} already exists. Replace it?</source>
        <translation>{0} はすでにあります。置き換えますか?</translation>
    </message>
    <message>
        <source>Loading the speech models…</source>
        <translation>音声モデルを読み込んでいます…</translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation>開始しています…</translation>
    </message>
    <message>
        <source>Cancelling after this sentence…</source>
        <translation>この文のあとで中止します…</translation>
    </message>
    <message>
        <source>{0} of audio</source>
        <translation>音声 {0}</translation>
    </message>
    <message>
        <source>{0:.1f}× real time</source>
        <translation>実時間の {0:.1f} 倍</translation>
    </message>
    <message>
        <source>about {0} left</source>
        <translation>残り約 {0}</translation>
    </message>
    <message>
        <source>writing the file</source>
        <translation>ファイルを書き込み中</translation>
    </message>
    <message>
        <source>chapter {0} of {1}</source>
        <translation>{1} 章中 {0} 章目</translation>
    </message>
    <message>
        <source>{0} chapters</source>
        <translation>{0} 章</translation>
    </message>
    <message>
        <source>{0} chapters from the earlier export</source>
        <translation>前回の書き出しから {0} 章</translation>
    </message>
    <message>
        <source>{0} sentences left out</source>
        <translation>{0} 文を省略</translation>
    </message>
    <message>
        <source>Exported {0}: {1}.</source>
        <translation>{0} を書き出しました: {1}。</translation>
    </message>
    <message>
        <source>Open Folder</source>
        <translation>フォルダーを開く</translation>
    </message>
    <message>
        <source>The export failed: {0}</source>
        <translation>書き出しに失敗しました: {0}</translation>
    </message>
    <message>
        <source>The export stopped because the speech models are reloading. The work done so far is kept: Export again continues it.</source>
        <translation>音声モデルを読み込み直すため、書き出しを止めました。ここまでの作業は残っています。もう一度書き出すと続きから再開します。</translation>
    </message>
    <message>
        <source>Export cancelled. The work done so far is kept: Export again continues it.</source>
        <translation>書き出しを中止しました。ここまでの作業は残っています。もう一度書き出すと続きから再開します。</translation>
    </message>
    <message>
        <source>An export is running. Stop it and quit? The work done so far is kept: Export again continues it.</source>
        <translation>書き出し中です。中止して終了しますか? ここまでの作業は残り、もう一度書き出すと続きから再開します。</translation>
    </message>
    <message>
        <source>Stop Export and &amp;Quit</source>
        <translation>書き出しを中止して終了(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;Keep Exporting</source>
        <translation>書き出しを続ける(&amp;K)</translation>
    </message>
</context>
<context>
    <name>FirstRunDialog</name>
    <message>
        <source>Welcome to MioDesk</source>
        <translation>MioDesk へようこそ</translation>
    </message>
    <message>
        <source>MioDesk reads aloud on this computer, without the internet. It needs its speech models once: about {0} in all. After that it works offline.</source>
        <translation>MioDesk はインターネットを使わず、このパソコンで読み上げます。最初に一度だけ音声モデル（合計約 {0}）が必要です。その後はオフラインで動きます。</translation>
    </message>
    <message>
        <source>Recommended for this computer</source>
        <translation>このパソコンへのおすすめ</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>モデル</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>サイズ</translation>
    </message>
    <message>
        <source>Licence</source>
        <translation>ライセンス</translation>
    </message>
    <message>
        <source>Saved in {0}</source>
        <translation>保存先：{0}</translation>
    </message>
    <message>
        <source>Models to download</source>
        <translation>ダウンロードするモデル</translation>
    </message>
    <message>
        <source>&amp;Download and start</source>
        <translation>ダウンロードして開始(&amp;D)</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>キャンセル</translation>
    </message>
    <message>
        <source>&amp;Later</source>
        <translation>あとで(&amp;L)</translation>
    </message>
    <message>
        <source>Download progress</source>
        <translation>ダウンロードの進行状況</translation>
    </message>
    <message>
        <source>Starting the download…</source>
        <translation>ダウンロードを開始しています…</translation>
    </message>
    <message>
        <source>Downloading {0} ({1} of {2})</source>
        <translation>{0} をダウンロード中（{1} / {2}）</translation>
    </message>
    <message>
        <source>{0}/s</source>
        <translation>{0}/秒</translation>
    </message>
    <message>
        <source>{0}:{1:02d} left</source>
        <translation>残り {0}:{1:02d}</translation>
    </message>
    <message>
        <source>Download cancelled. Nothing half-finished was kept.</source>
        <translation>ダウンロードを取り消しました。途中のファイルは残っていません。</translation>
    </message>
    <message>
        <source>The download failed: {0}</source>
        <translation>ダウンロードに失敗しました：{0}</translation>
    </message>
    <message>
        <source>&amp;Try again</source>
        <translation>もう一度試す(&amp;T)</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>取り消しています…</translation>
    </message>
</context>
<context>
    <name>GlobalReader</name>
    <message>
        <source>Stopped reading.</source>
        <translation>読み上げを止めました。</translation>
    </message>
    <message>
        <source>The clipboard holds no text to read.</source>
        <translation>クリップボードに読み上げるテキストがありません。</translation>
    </message>
    <message>
        <source>Nothing is selected, and the clipboard holds no text to read.</source>
        <translation>何も選択されておらず、クリップボードにも読み上げるテキストがありません。</translation>
    </message>
    <message>
        <source>Nothing is selected.</source>
        <translation>何も選択されていません。</translation>
    </message>
    <message>
        <source>The selection holds no readable text.</source>
        <translation>選択範囲に読み上げられるテキストがありません。</translation>
    </message>
    <message>
        <source>Selection</source>
        <translation>選択範囲</translation>
    </message>
    <message>
        <source>Clipboard</source>
        <translation>クリップボード</translation>
    </message>
    <message>
        <source>Nothing is selected, so MioDesk reads the clipboard.</source>
        <translation>何も選択されていないため、クリップボードを読み上げます。</translation>
    </message>
    <message>
        <source>Binary data in it was left out.</source>
        <translation>含まれていたバイナリデータは省きました。</translation>
    </message>
    <message>
        <source>It is long: MioDesk reads its first {0} characters.</source>
        <translation>長いため、最初の {0} 文字を読み上げます。</translation>
    </message>
    <message>
        <source>Reading the selection: “{0}”</source>
        <translation>選択範囲を読み上げています:「{0}」</translation>
    </message>
    <message>
        <source>Reading the clipboard: “{0}”</source>
        <translation>クリップボードを読み上げています:「{0}」</translation>
    </message>
</context>
<context>
    <name>LogDialog</name>
    <message>
        <source>MioDesk log</source>
        <translation>MioDesk のログ</translation>
    </message>
    <message>
        <source>Log file: {0}</source>
        <translation>ログファイル：{0}</translation>
    </message>
    <message>
        <source>Log</source>
        <translation>ログ</translation>
    </message>
    <message>
        <source>&amp;Copy</source>
        <translation>コピー(&amp;C)</translation>
    </message>
    <message>
        <source>Open &amp;Folder</source>
        <translation>フォルダーを開く(&amp;F)</translation>
    </message>
    <message>
        <source>The log file cannot be read: {0}</source>
        <translation>ログファイルを読めません：{0}</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>The settings file was damaged, so MioDesk started with the default settings. The damaged file was kept as {0}.</source>
        <translation>設定ファイルが壊れていたため、既定の設定で起動しました。壊れたファイルは {0} として残してあります。</translation>
    </message>
    <message>
        <source>The model catalogue is not available: {0}</source>
        <translation>モデルの一覧を利用できません：{0}</translation>
    </message>
    <message>
        <source>The models are ready. Open a document or paste text to start reading.</source>
        <translation>モデルの準備ができました。文書を開くかテキストを貼り付けると読み上げを始めます。</translation>
    </message>
    <message>
        <source>System information copied to the clipboard.</source>
        <translation>システム情報をクリップボードにコピーしました。</translation>
    </message>
    <message>
        <source>&amp;Open…</source>
        <translation>開く(&amp;O)…</translation>
    </message>
    <message>
        <source>Open a document</source>
        <translation>文書を開く</translation>
    </message>
    <message>
        <source>&amp;Paste and Read</source>
        <translation>貼り付けて読む(&amp;P)</translation>
    </message>
    <message>
        <source>Read the text on the clipboard</source>
        <translation>クリップボードのテキストを読み上げます</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>終了(&amp;Q)</translation>
    </message>
    <message>
        <source>Quit MioDesk</source>
        <translation>MioDesk を終了</translation>
    </message>
    <message>
        <source>&amp;Play</source>
        <translation>再生(&amp;P)</translation>
    </message>
    <message>
        <source>Play (Space)</source>
        <translation>再生（スペース）</translation>
    </message>
    <message>
        <source>&amp;Stop</source>
        <translation>停止(&amp;S)</translation>
    </message>
    <message>
        <source>Stop (Esc)</source>
        <translation>停止（Esc）</translation>
    </message>
    <message>
        <source>Read from &amp;Cursor</source>
        <translation>カーソル位置から読む(&amp;C)</translation>
    </message>
    <message>
        <source>Start reading at the cursor</source>
        <translation>カーソルの位置から読み上げます</translation>
    </message>
    <message>
        <source>Previous S&amp;entence</source>
        <translation>前の文(&amp;E)</translation>
    </message>
    <message>
        <source>&amp;Next Sentence</source>
        <translation>次の文(&amp;N)</translation>
    </message>
    <message>
        <source>Previous sentence (Alt+←)</source>
        <translation>前の文（Alt+←）</translation>
    </message>
    <message>
        <source>Serving on {0}</source>
        <translation>{0} で音声を提供中</translation>
    </message>
    <message>
        <source>MioDesk&apos;s speech server for other apps</source>
        <translation>ほかのアプリ向けの MioDesk 音声サーバー</translation>
    </message>
    <message>
        <source>Other apps on this computer can use MioDesk&apos;s voices at http://{0}/v1 (Settings › Server)</source>
        <translation>このコンピューターのほかのアプリは http://{0}/v1 で MioDesk の声を使えます（設定 › サーバー）</translation>
    </message>
    <message>
        <source>&amp;Export Audio…</source>
        <translation>音声ファイルに書き出す(&amp;E)…</translation>
    </message>
    <message>
        <source>Save the document as an audiobook file</source>
        <translation>文書をオーディオブックのファイルとして保存します</translation>
    </message>
    <message>
        <source>Next sentence (Alt+→)</source>
        <translation>次の文（Alt+→）</translation>
    </message>
    <message>
        <source>Previous C&amp;hapter</source>
        <translation>前の章(&amp;H)</translation>
    </message>
    <message>
        <source>Previous chapter (Ctrl+↑)</source>
        <translation>前の章（Ctrl+↑）</translation>
    </message>
    <message>
        <source>Next &amp;Chapter</source>
        <translation>次の章(&amp;C)</translation>
    </message>
    <message>
        <source>Next chapter (Ctrl+↓)</source>
        <translation>次の章（Ctrl+↓）</translation>
    </message>
    <message>
        <source>&amp;Preview Voice</source>
        <translation>声を試聴(&amp;P)</translation>
    </message>
    <message>
        <source>Hear a short sample of this voice</source>
        <translation>この声の短いサンプルを聞きます</translation>
    </message>
    <message>
        <source>&amp;Record Voice…</source>
        <translation>声を録音(&amp;R)…</translation>
    </message>
    <message>
        <source>Make a voice from your microphone</source>
        <translation>マイクから自分の声を作ります</translation>
    </message>
    <message>
        <source>&amp;Settings…</source>
        <translation>設定(&amp;S)…</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>設定</translation>
    </message>
    <message>
        <source>&amp;Faster</source>
        <translation>速く(&amp;F)</translation>
    </message>
    <message>
        <source>Read faster</source>
        <translation>速く読む</translation>
    </message>
    <message>
        <source>S&amp;lower</source>
        <translation>遅く(&amp;L)</translation>
    </message>
    <message>
        <source>Read slower</source>
        <translation>ゆっくり読む</translation>
    </message>
    <message>
        <source>&amp;Contents</source>
        <translation>目次(&amp;C)</translation>
    </message>
    <message>
        <source>Show the chapters and headings</source>
        <translation>章と見出しを表示します</translation>
    </message>
    <message>
        <source>&amp;Highlight Sentence</source>
        <translation>文を強調表示(&amp;H)</translation>
    </message>
    <message>
        <source>Highlight the sentence being read</source>
        <translation>読んでいる文を強調表示します</translation>
    </message>
    <message>
        <source>&amp;Auto-scroll</source>
        <translation>自動スクロール(&amp;A)</translation>
    </message>
    <message>
        <source>Keep the sentence being read in view</source>
        <translation>読んでいる文を常に表示します</translation>
    </message>
    <message>
        <source>&amp;About MioDesk</source>
        <translation>MioDesk について(&amp;A)</translation>
    </message>
    <message>
        <source>Versions and licences</source>
        <translation>バージョンとライセンス</translation>
    </message>
    <message>
        <source>Show &amp;Logs</source>
        <translation>ログを表示(&amp;L)</translation>
    </message>
    <message>
        <source>Show the log file</source>
        <translation>ログファイルを表示します</translation>
    </message>
    <message>
        <source>&amp;Copy System Info</source>
        <translation>システム情報をコピー(&amp;C)</translation>
    </message>
    <message>
        <source>Copy details for a bug report</source>
        <translation>不具合報告用の情報をコピーします</translation>
    </message>
    <message>
        <source>&amp;Models…</source>
        <translation>モデル(&amp;M)…</translation>
    </message>
    <message>
        <source>Download or choose speech models</source>
        <translation>音声モデルをダウンロード・選択します</translation>
    </message>
    <message>
        <source>Readings &amp;Dictionary…</source>
        <translation>読み方辞書(&amp;D)…</translation>
    </message>
    <message>
        <source>Words the speech model should say differently</source>
        <translation>音声モデルに別の読み方で話させる単語</translation>
    </message>
    <message>
        <source>&amp;Larger Text</source>
        <translation>文字を大きく(&amp;L)</translation>
    </message>
    <message>
        <source>Make the text larger (Ctrl++)</source>
        <translation>文字を大きくする（Ctrl++）</translation>
    </message>
    <message>
        <source>S&amp;maller Text</source>
        <translation>文字を小さく(&amp;M)</translation>
    </message>
    <message>
        <source>Make the text smaller (Ctrl+-)</source>
        <translation>文字を小さくする（Ctrl+-）</translation>
    </message>
    <message>
        <source>&amp;Normal Text Size</source>
        <translation>標準の文字サイズ(&amp;N)</translation>
    </message>
    <message>
        <source>The text at its normal size (Ctrl+0)</source>
        <translation>文字を標準の大きさに戻す（Ctrl+0）</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>ファイル(&amp;F)</translation>
    </message>
    <message>
        <source>Open &amp;Recent</source>
        <translation>最近使ったファイル(&amp;R)</translation>
    </message>
    <message>
        <source>&amp;Playback</source>
        <translation>再生(&amp;P)</translation>
    </message>
    <message>
        <source>Output &amp;Device</source>
        <translation>出力デバイス(&amp;D)</translation>
    </message>
    <message>
        <source>&amp;Voice</source>
        <translation>声(&amp;V)</translation>
    </message>
    <message>
        <source>V&amp;iew</source>
        <translation>表示(&amp;I)</translation>
    </message>
    <message>
        <source>&amp;Tools</source>
        <translation>ツール(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>ヘルプ(&amp;H)</translation>
    </message>
    <message>
        <source>Contents</source>
        <translation>目次</translation>
    </message>
    <message>
        <source>Document</source>
        <translation>文書</translation>
    </message>
    <message>
        <source>The text being read. Double-click or press Enter to read from a sentence.</source>
        <translation>読み上げ中のテキスト。文をダブルクリックするか Enter を押すとそこから読みます。</translation>
    </message>
    <message>
        <source>Model and device</source>
        <translation>モデルとデバイス</translation>
    </message>
    <message>
        <source>Time to first audio</source>
        <translation>最初の音声までの時間</translation>
    </message>
    <message>
        <source>Real-time factor</source>
        <translation>実時間係数</translation>
    </message>
    <message>
        <source>Time remaining</source>
        <translation>残り時間</translation>
    </message>
    <message>
        <source>Loading</source>
        <translation>読み込み中</translation>
    </message>
    <message>
        <source>&amp;Pause</source>
        <translation>一時停止(&amp;P)</translation>
    </message>
    <message>
        <source>Pause (Space)</source>
        <translation>一時停止（スペース）</translation>
    </message>
    <message>
        <source>Loading the speech models… The first time takes a little longer.</source>
        <translation>音声モデルを読み込んでいます…初回は少し時間がかかります。</translation>
    </message>
    <message>
        <source>Loading models…</source>
        <translation>モデルを読み込み中…</translation>
    </message>
    <message>
        <source>{0} · {1}</source>
        <translation>{0} · {1}</translation>
    </message>
    <message>
        <source>Models not loaded</source>
        <translation>モデル未読み込み</translation>
    </message>
    <message>
        <source>Speech model on {0} · loads on first Play</source>
        <translation>音声モデル：{0} · 最初の再生で読み込みます</translation>
    </message>
    <message>
        <source>Models load on first Play</source>
        <translation>最初の再生でモデルを読み込みます</translation>
    </message>
    <message>
        <source>Opening {0}…</source>
        <translation>{0} を開いています…</translation>
    </message>
    <message>
        <source>{0} sentences</source>
        <translation>{0} 文</translation>
    </message>
    <message>
        <source>This document has no text to read.</source>
        <translation>この文書には読み上げるテキストがありません。</translation>
    </message>
    <message>
        <source>Welcome back: Play continues where you stopped.</source>
        <translation>おかえりなさい。再生すると前回の続きから読みます。</translation>
    </message>
    <message>
        <source>Start from the beginning</source>
        <translation>最初から読む</translation>
    </message>
    <message>
        <source>Sentence {0} of {1}</source>
        <translation>{1} 文中 {0} 文目</translation>
    </message>
    <message>
        <source>First audio {0:.2f} s</source>
        <translation>最初の音声 {0:.2f} 秒</translation>
    </message>
    <message>
        <source>Time from Play to the first sound of this reading</source>
        <translation>再生を押してから最初の音が出るまでの時間</translation>
    </message>
    <message>
        <source>RTF {0:.2f}</source>
        <translation>RTF {0:.2f}</translation>
    </message>
    <message>
        <source>Real-time factor: compute time per second of speech (below 1 keeps up)</source>
        <translation>実時間係数：音声 1 秒あたりの計算時間（1 未満なら遅れません）</translation>
    </message>
    <message>
        <source>About {0} left</source>
        <translation>残り約 {0}</translation>
    </message>
    <message>
        <source>Finished</source>
        <translation>読み終わりました</translation>
    </message>
    <message>
        <source>Finished reading.</source>
        <translation>読み終わりました。</translation>
    </message>
    <message>
        <source>Stopped at sentence {0} of {1}.</source>
        <translation>{1} 文中 {0} 文目で停止しました。</translation>
    </message>
    <message>
        <source>Stopped.</source>
        <translation>停止しました。</translation>
    </message>
    <message>
        <source>Paused at sentence {0} of {1}.</source>
        <translation>{1} 文中 {0} 文目で一時停止しました。</translation>
    </message>
    <message>
        <source>Paused.</source>
        <translation>一時停止しました。</translation>
    </message>
    <message>
        <source>Documents ({0});;All files (*)</source>
        <translation>文書 ({0});;すべてのファイル (*)</translation>
    </message>
    <message>
        <source>Clipboard</source>
        <translation>クリップボード</translation>
    </message>
    <message>
        <source>The clipboard holds no text to read.</source>
        <translation>クリップボードに読み上げるテキストがありません。</translation>
    </message>
    <message>
        <source>The voice that reads; a change applies from the next sentence</source>
        <translation>読み上げる声。変更は次の文から反映されます</translation>
    </message>
    <message>
        <source>The voice of the Japanese sentences; a change applies from the next sentence. Settings › Voices has the voice of each language.</source>
        <translation>日本語の文を読む声。変更は次の文から反映されます。言語ごとの声は 設定 › 声 で選べます。</translation>
    </message>
    <message>
        <source>The voice of the English sentences; a change applies from the next sentence. Settings › Voices has the voice of each language.</source>
        <translation>英語の文を読む声。変更は次の文から反映されます。言語ごとの声は 設定 › 声 で選べます。</translation>
    </message>
    <message>
        <source>Official preset voice: audio made with it may not be used commercially.</source>
        <translation>公式プリセット音声：この声で作った音声は商用利用できません。</translation>
    </message>
    <message>
        <source>No voices installed</source>
        <translation>声がありません</translation>
    </message>
    <message>
        <source>Speed {0}</source>
        <translation>速さ {0}</translation>
    </message>
    <message>
        <source>Text size {0} %</source>
        <translation>文字サイズ {0} %</translation>
    </message>
    <message>
        <source>Cannot save the settings: {0}</source>
        <translation>設定を保存できません：{0}</translation>
    </message>
    <message>
        <source>System default</source>
        <translation>システムの既定</translation>
    </message>
    <message>
        <source>Voice “{0}” saved.</source>
        <translation>声「{0}」を保存しました。</translation>
    </message>
    <message>
        <source>Collecting system information…</source>
        <translation>システム情報を集めています…</translation>
    </message>
    <message>
        <source>Dropped text</source>
        <translation>ドロップしたテキスト</translation>
    </message>
</context>
<context>
    <name>MessageBanner</name>
    <message>
        <source>Dismiss</source>
        <translation>閉じる</translation>
    </message>
    <message>
        <source>Dismiss message</source>
        <translation>メッセージを閉じる</translation>
    </message>
    <message>
        <source>Message</source>
        <translation>メッセージ</translation>
    </message>
</context>
<context>
    <name>ReaderController</name>
    <message>
        <source>The speech models could not be loaded: {0}</source>
        <translation>音声モデルを読み込めませんでした：{0}</translation>
    </message>
    <message>
        <source>{0} on {1}</source>
        <translation>{1} の {0}</translation>
    </message>
    <message>
        <source>MioDesk&apos;s speech server did not start: {0}</source>
        <translation>MioDesk の音声サーバーを起動できませんでした：{0}</translation>
    </message>
    <message>
        <source>Cannot open {0}: {1}</source>
        <translation>{0} を開けません：{1}</translation>
    </message>
    <message>
        <source>No voice is installed. Download the preset voices or record your own voice.</source>
        <translation>声がありません。プリセット音声をダウンロードするか、自分の声を録音してください。</translation>
    </message>
    <message>
        <source>Open a document or paste some text first.</source>
        <translation>先に文書を開くか、テキストを貼り付けてください。</translation>
    </message>
</context>
<context>
    <name>ReaderTray</name>
    <message>
        <source>Read Clipboard</source>
        <translation>クリップボードを読む</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Show Window</source>
        <translation>ウィンドウを表示</translation>
    </message>
    <message>
        <source>Quit</source>
        <translation>終了</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>再開</translation>
    </message>
    <message>
        <source>Pause</source>
        <translation>一時停止</translation>
    </message>
    <message>
        <source>MioDesk — reading</source>
        <translation>MioDesk — 読み上げ中</translation>
    </message>
    <message>
        <source>MioDesk — paused</source>
        <translation>MioDesk — 一時停止中</translation>
    </message>
    <message>
        <source>MioDesk — loading models</source>
        <translation>MioDesk — モデル読み込み中</translation>
    </message>
    <message>
        <source>MioDesk keeps reading here. Use Quit in this menu to exit.</source>
        <translation>MioDesk はここで読み上げを続けます。終了するにはこのメニューの「終了」を選んでください。</translation>
    </message>
</context>
<context>
    <name>ReaderView</name>
    <message>
        <source>Read from here</source>
        <translation>ここから読む</translation>
    </message>
    <message>
        <source>Add Reading for “{0}”…</source>
        <translation>「{0}」の読み方を登録…</translation>
    </message>
</context>
<context>
    <name>ReadingEntryDialog</name>
    <message>
        <source>Edit Reading</source>
        <translation>読み方を編集</translation>
    </message>
    <message>
        <source>Add Reading</source>
        <translation>読み方を登録</translation>
    </message>
    <message>
        <source>Japanese</source>
        <translation>日本語</translation>
    </message>
    <message>
        <source>English</source>
        <translation>英語</translation>
    </message>
    <message>
        <source>Any language</source>
        <translation>すべての言語</translation>
    </message>
    <message>
        <source>The word is a regular e&amp;xpression (the reading may use \1)</source>
        <translation>単語は正規表現(&amp;X)（読みで \1 などを使えます）</translation>
    </message>
    <message>
        <source>O&amp;n</source>
        <translation>有効(&amp;N)</translation>
    </message>
    <message>
        <source>&amp;Word:</source>
        <translation>単語(&amp;W):</translation>
    </message>
    <message>
        <source>&amp;Reading:</source>
        <translation>読み(&amp;R):</translation>
    </message>
    <message>
        <source>&amp;Sentences:</source>
        <translation>対象の文(&amp;S):</translation>
    </message>
    <message>
        <source>&amp;Priority:</source>
        <translation>優先度(&amp;P):</translation>
    </message>
    <message>
        <source>No&amp;te:</source>
        <translation>メモ(&amp;T):</translation>
    </message>
    <message>
        <source>The word as it is written in the text</source>
        <translation>本文に書かれているとおりの単語</translation>
    </message>
    <message>
        <source>What the speech model is given instead, e.g. in kana</source>
        <translation>代わりに音声モデルに渡す読み（かななど）</translation>
    </message>
    <message>
        <source>Decides between two matches of the same length: the higher one wins</source>
        <translation>同じ長さで一致したときに使われます。大きいほうが優先です</translation>
    </message>
    <message>
        <source>Pre&amp;view</source>
        <translation>試聴(&amp;V)</translation>
    </message>
    <message>
        <source>Type a reading to hear it.</source>
        <translation>試聴するには読みを入力してください。</translation>
    </message>
</context>
<context>
    <name>ReadingsDialog</name>
    <message>
        <source>Readings Dictionary</source>
        <translation>読み方辞書</translation>
    </message>
    <message>
        <source>Words the speech model should say differently. Each change is saved at once and heard from the next sentence read.</source>
        <translation>音声モデルに別の読み方で話させる単語です。変更はすぐに保存され、次に読む文から反映されます。</translation>
    </message>
    <message>
        <source>Word, reading or note</source>
        <translation>単語・読み・メモ</translation>
    </message>
    <message>
        <source>&amp;Search:</source>
        <translation>検索(&amp;S):</translation>
    </message>
    <message>
        <source>&amp;Add…</source>
        <translation>追加(&amp;A)…</translation>
    </message>
    <message>
        <source>&amp;Edit…</source>
        <translation>編集(&amp;E)…</translation>
    </message>
    <message>
        <source>&amp;Delete</source>
        <translation>削除(&amp;D)</translation>
    </message>
    <message>
        <source>&amp;Undo</source>
        <translation>元に戻す(&amp;U)</translation>
    </message>
    <message>
        <source>Pre&amp;view</source>
        <translation>試聴(&amp;V)</translation>
    </message>
    <message>
        <source>&amp;Import…</source>
        <translation>読み込み(&amp;I)…</translation>
    </message>
    <message>
        <source>E&amp;xport…</source>
        <translation>書き出し(&amp;X)…</translation>
    </message>
    <message>
        <source>On</source>
        <translation>有効</translation>
    </message>
    <message>
        <source>Word</source>
        <translation>単語</translation>
    </message>
    <message>
        <source>Reading</source>
        <translation>読み</translation>
    </message>
    <message>
        <source>Sentences</source>
        <translation>対象の文</translation>
    </message>
    <message>
        <source>Priority</source>
        <translation>優先度</translation>
    </message>
    <message>
        <source>Kind</source>
        <translation>種類</translation>
    </message>
    <message>
        <source>Readings</source>
        <translation>読み方</translation>
    </message>
    <message>
        <source>Enter edits the reading, Space switches it on or off, Delete deletes it</source>
        <translation>Enter で編集、Space で有効・無効の切り替え、Delete で削除</translation>
    </message>
    <message>
        <source>Shows only the readings that contain this text</source>
        <translation>この文字を含む読み方だけを表示します</translation>
    </message>
    <message>
        <source>Japanese</source>
        <translation>日本語</translation>
    </message>
    <message>
        <source>English</source>
        <translation>英語</translation>
    </message>
    <message>
        <source>Any language</source>
        <translation>すべての言語</translation>
    </message>
    <message>
        <source>Off</source>
        <translation>無効</translation>
    </message>
    <message>
        <source>Pattern</source>
        <translation>正規表現</translation>
    </message>
    <message>
        <source> (and {0} more)</source>
        <translation>（ほか {0} 件）</translation>
    </message>
    <message>
        <source>Replaced the reading of “{0}”: {1} → {2}.</source>
        <translation>「{0}」の読みを置き換えました: {1} → {2}</translation>
    </message>
    <message>
        <source>Added “{0}” → {1}.</source>
        <translation>「{0}」→ {1} を登録しました。</translation>
    </message>
    <message>
        <source>Saved “{0}” → {1}.</source>
        <translation>「{0}」→ {1} を保存しました。</translation>
    </message>
    <message>
        <source>Deleted “{0}” → {1}. Undo (Ctrl+Z) brings it back.</source>
        <translation>「{0}」→ {1} を削除しました。元に戻す（Ctrl+Z）で復元できます。</translation>
    </message>
    <message>
        <source>Restored “{0}”.</source>
        <translation>「{0}」を復元しました。</translation>
    </message>
    <message>
        <source>“{0}” is on.</source>
        <translation>「{0}」を有効にしました。</translation>
    </message>
    <message>
        <source>“{0}” is off.</source>
        <translation>「{0}」を無効にしました。</translation>
    </message>
    <message>
        <source>Import Readings</source>
        <translation>読み方を読み込む</translation>
    </message>
    <message>
        <source>Dictionaries (*.tsv *.txt *.json *.csv);;All files (*)</source>
        <translation>辞書 (*.tsv *.txt *.json *.csv);;すべてのファイル (*)</translation>
    </message>
    <message>
        <source>“{0}” holds no reading that could be imported.</source>
        <translation>「{0}」には読み込める読み方がありません。</translation>
    </message>
    <message>
        <source>Imported {0} readings from “{1}”: {2} new, {3} replaced.</source>
        <translation>「{1}」から {0} 件の読み方を読み込みました（新規 {2} 件、置き換え {3} 件）。</translation>
    </message>
    <message>
        <source>The accent data of {0} words was dropped (the speech model takes no accent marks).</source>
        <translation>{0} 語のアクセント情報は使われません（音声モデルはアクセント指定を受け付けません）。</translation>
    </message>
    <message>
        <source>{0} skipped: {1}</source>
        <translation>{0} 件をスキップ: {1}</translation>
    </message>
    <message>
        <source>Export Readings</source>
        <translation>読み方を書き出す</translation>
    </message>
    <message>
        <source>Readings (*.tsv)</source>
        <translation>読み方 (*.tsv)</translation>
    </message>
    <message>
        <source>Exported {0} readings to “{1}”.</source>
        <translation>{0} 件の読み方を「{1}」に書き出しました。</translation>
    </message>
</context>
<context>
    <name>RecordVoiceDialog</name>
    <message>
        <source>Record your voice</source>
        <translation>自分の声を録音</translation>
    </message>
    <message>
        <source>System default</source>
        <translation>システムの既定</translation>
    </message>
    <message>
        <source>Read this text aloud in your normal voice, for 10 to 30 seconds:</source>
        <translation>次の文章を普段の声で 10〜30 秒間読み上げてください：</translation>
    </message>
    <message>
        <source>Input level</source>
        <translation>入力レベル</translation>
    </message>
    <message>
        <source>&amp;Record</source>
        <translation>録音(&amp;R)</translation>
    </message>
    <message>
        <source>&amp;Stop</source>
        <translation>停止(&amp;S)</translation>
    </message>
    <message>
        <source>&amp;Play back</source>
        <translation>再生して確認(&amp;P)</translation>
    </message>
    <message>
        <source>R&amp;e-record</source>
        <translation>録り直す(&amp;E)</translation>
    </message>
    <message>
        <source>e.g. My voice</source>
        <translation>例：わたしの声</translation>
    </message>
    <message>
        <source>Sa&amp;ve voice</source>
        <translation>声を保存(&amp;V)</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>キャンセル</translation>
    </message>
    <message>
        <source>&amp;Microphone:</source>
        <translation>マイク(&amp;M)：</translation>
    </message>
    <message>
        <source>Voice &amp;name:</source>
        <translation>声の名前(&amp;N)：</translation>
    </message>
    <message>
        <source>&amp;Record another take</source>
        <translation>もう一度録音(&amp;R)</translation>
    </message>
    <message>
        <source>Recording… read the text aloud, then press Stop.</source>
        <translation>録音中… 文章を読み上げてから「停止」を押してください。</translation>
    </message>
    <message>
        <source>Checking the recording…</source>
        <translation>録音を確認しています…</translation>
    </message>
    <message>
        <source>Take {n} is usable. Record another take, or name the voice and save it.</source>
        <translation>テイク {n} は使えます。もう一度録音するか、声に名前を付けて保存してください。</translation>
    </message>
    <message>
        <source>Take {n} cannot be used; please record again.</source>
        <translation>テイク {n} は使えません。もう一度録音してください。</translation>
    </message>
    <message>
        <source>Take {n}: good ({s:.0f} s of speech).</source>
        <translation>テイク {n}：良好（発話 {s:.0f} 秒）。</translation>
    </message>
    <message>
        <source>Take {n}:</source>
        <translation>テイク {n}：</translation>
    </message>
    <message>
        <source>Nothing was heard: check that the right microphone is selected, connected and not muted.</source>
        <translation>何も聞こえませんでした。正しいマイクが選ばれ、接続され、ミュートされていないか確認してください。</translation>
    </message>
    <message>
        <source>Too much background noise (speech is only {0:.0f} dB above it): record somewhere quieter.</source>
        <translation>周りの雑音が大きすぎます（声が雑音より {0:.0f} dB しか大きくありません）。もっと静かな場所で録音してください。</translation>
    </message>
    <message>
        <source>Some background noise (speech {0:.0f} dB above it): a quieter room gives a cleaner voice.</source>
        <translation>少し雑音があります（声は雑音より {0:.0f} dB 大きい）。静かな部屋ほどきれいな声になります。</translation>
    </message>
    <message>
        <source>The sound is distorted (clipping): move back from the microphone or lower its gain.</source>
        <translation>音が割れています（クリッピング）。マイクから離れるか、マイクの音量を下げてください。</translation>
    </message>
    <message>
        <source>Some peaks are clipped: speak a little softer or lower the microphone gain.</source>
        <translation>一部の音が割れています。少し小さめの声で話すか、マイクの音量を下げてください。</translation>
    </message>
    <message>
        <source>Far too quiet: move closer to the microphone or raise its gain, then record again.</source>
        <translation>音が小さすぎます。マイクに近づくか音量を上げて、もう一度録音してください。</translation>
    </message>
    <message>
        <source>The recording is quiet: move closer to the microphone or raise its gain.</source>
        <translation>録音の音が小さめです。マイクに近づくか、マイクの音量を上げてください。</translation>
    </message>
    <message>
        <source>Too short: only {0:.1f} s of speech; read for at least 10 seconds.</source>
        <translation>短すぎます（発話 {0:.1f} 秒）。10 秒以上読み上げてください。</translation>
    </message>
    <message>
        <source>Short: {0:.1f} s of speech; 10–30 seconds give a more faithful voice.</source>
        <translation>少し短めです（発話 {0:.1f} 秒）。10〜30 秒あると、より忠実な声になります。</translation>
    </message>
    <message>
        <source>Mostly silence: keep reading steadily, with only short pauses.</source>
        <translation>ほとんど無音です。間を短くして、続けて読み上げてください。</translation>
    </message>
    <message>
        <source>Cannot play the recording: {error}</source>
        <translation>録音を再生できません：{error}</translation>
    </message>
    <message>
        <source>A voice named “{name}” already exists; choose another name.</source>
        <translation>「{name}」という名前の声はすでにあります。別の名前にしてください。</translation>
    </message>
    <message>
        <source>Making the voice… this takes a few seconds.</source>
        <translation>声を作成しています… 数秒かかります。</translation>
    </message>
    <message>
        <source>Saved voice “{name}”.</source>
        <translation>声「{name}」を保存しました。</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>設定</translation>
    </message>
    <message>
        <source>Speech</source>
        <translation>音声合成</translation>
    </message>
    <message>
        <source>Audio</source>
        <translation>オーディオ</translation>
    </message>
    <message>
        <source>Interface</source>
        <translation>画面</translation>
    </message>
    <message>
        <source>&amp;Model:</source>
        <translation>モデル(&amp;M)：</translation>
    </message>
    <message>
        <source>&amp;Browse…</source>
        <translation>参照(&amp;B)…</translation>
    </message>
    <message>
        <source>Choose a model file</source>
        <translation>モデルファイルを選ぶ</translation>
    </message>
    <message>
        <source>Compute &amp;device:</source>
        <translation>計算デバイス(&amp;D)：</translation>
    </message>
    <message>
        <source>Speech model &amp;threads:</source>
        <translation>音声モデルのスレッド数(&amp;T)：</translation>
    </message>
    <message>
        <source>Automatic</source>
        <translation>自動</translation>
    </message>
    <message>
        <source>&amp;Streaming (sound starts sooner)</source>
        <translation>ストリーミング（早く音が出る）(&amp;S)</translation>
    </message>
    <message>
        <source>&amp;Whole sentences (exact, starts later)</source>
        <translation>文ごと（正確、開始は遅め）(&amp;W)</translation>
    </message>
    <message>
        <source>Changes to the model, codec or compute device reload the models.</source>
        <translation>モデル、コーデック、計算デバイスを変えるとモデルを読み込み直します。</translation>
    </message>
    <message>
        <source>&amp;Language:</source>
        <translation>言語(&amp;L)：</translation>
    </message>
    <message>
        <source>&amp;Highlight the sentence being read</source>
        <translation>読んでいる文を強調表示する(&amp;H)</translation>
    </message>
    <message>
        <source>&amp;Keep the sentence being read in view</source>
        <translation>読んでいる文を常に表示する(&amp;K)</translation>
    </message>
    <message>
        <source>Cod&amp;ec:</source>
        <translation>コーデック(&amp;E)：</translation>
    </message>
    <message>
        <source>Server</source>
        <translation>サーバー</translation>
    </message>
    <message>
        <source>Voices</source>
        <translation>声</translation>
    </message>
    <message>
        <source>Shortcuts</source>
        <translation>ショートカット</translation>
    </message>
    <message>
        <source>Reading voices</source>
        <translation>読み上げる声</translation>
    </message>
    <message>
        <source>A voice for each &amp;language</source>
        <translation>言語ごとの声(&amp;L)</translation>
    </message>
    <message>
        <source>&amp;Japanese sentences:</source>
        <translation>日本語の文(&amp;J)：</translation>
    </message>
    <message>
        <source>&amp;English sentences:</source>
        <translation>英語の文(&amp;E)：</translation>
    </message>
    <message>
        <source>One voice for &amp;all sentences</source>
        <translation>すべての文を一つの声で(&amp;A)</translation>
    </message>
    <message>
        <source>&amp;Voice:</source>
        <translation>声(&amp;V)：</translation>
    </message>
    <message>
        <source>With a voice for each language, a document that mixes Japanese and English switches voice from sentence to sentence; sentences of only numbers or symbols keep the voice of the document&apos;s main language. The voice list in the window shows and changes the voice of the open document&apos;s language.</source>
        <translation>言語ごとの声では、日本語と英語が混ざった文書は文ごとに声が切り替わります。数字や記号だけの文は文書の主な言語の声のままです。ウィンドウの声の一覧は、開いている文書の言語の声を表示・変更します。</translation>
    </message>
    <message>
        <source>&amp;Dialogue voice:</source>
        <translation>会話の声(&amp;D):</translation>
    </message>
    <message>
        <source>Text inside 「…」, 『…』 and &quot;…&quot; is read in this voice, from the next sentence; the document&apos;s sentences are then split where a quote begins and ends. File › Export Audio… offers the same.</source>
        <translation>「…」『…』&quot;…&quot; の中を次の文からこの声で読みます。このとき文書の文は引用の始めと終わりで区切られます。ファイル › 音声ファイルに書き出す でも同じものを選べます。</translation>
    </message>
    <message>
        <source>(none)</source>
        <translation>(なし)</translation>
    </message>
    <message>
        <source>Pause between &amp;sentences:</source>
        <translation>文と文の間(&amp;S):</translation>
    </message>
    <message>
        <source>Pause between &amp;paragraphs:</source>
        <translation>段落の間(&amp;P):</translation>
    </message>
    <message>
        <source> s</source>
        <translation> 秒</translation>
    </message>
    <message>
        <source>After a heading the pause is half again the paragraph pause. Reading takes new pauses from the next sentence; exports use them too.</source>
        <translation>見出しの後の間は段落の間の 1.5 倍です。読み上げ中の変更は次の文から反映され、書き出しにも使われます。</translation>
    </message>
    <message>
        <source>Speech model</source>
        <translation>音声モデル</translation>
    </message>
    <message>
        <source>On this com&amp;puter</source>
        <translation>このコンピューター(&amp;P)</translation>
    </message>
    <message>
        <source>On a ser&amp;ver</source>
        <translation>サーバー(&amp;V)</translation>
    </message>
    <message>
        <source>Model &amp;file:</source>
        <translation>モデルファイル(&amp;F)：</translation>
    </message>
    <message>
        <source>Server URL:</source>
        <translation>サーバーの URL：</translation>
    </message>
    <message>
        <source>API ke&amp;y:</source>
        <translation>API キー(&amp;Y)：</translation>
    </message>
    <message>
        <source>first model the server lists</source>
        <translation>サーバーが示す最初のモデル</translation>
    </message>
    <message>
        <source>Test connect&amp;ion</source>
        <translation>接続をテスト(&amp;I)</translation>
    </message>
    <message>
        <source>Ask the server which model it serves and whether it speaks</source>
        <translation>サーバーにどのモデルを提供しているか、音声を返すかを確かめる</translation>
    </message>
    <message>
        <source>Codec thre&amp;ads:</source>
        <translation>コーデックのスレッド数(&amp;A)：</translation>
    </message>
    <message>
        <source>Decoding</source>
        <translation>デコード</translation>
    </message>
    <message>
        <source>O&amp;utput device:</source>
        <translation>出力デバイス(&amp;U)：</translation>
    </message>
    <message>
        <source>Text si&amp;ze:</source>
        <translation>文字サイズ(&amp;Z)：</translation>
    </message>
    <message>
        <source> %</source>
        <translation> %</translation>
    </message>
    <message>
        <source>Closing the window keeps reading in the system t&amp;ray</source>
        <translation>ウィンドウを閉じてもシステムトレイで読み上げを続ける(&amp;R)</translation>
    </message>
    <message>
        <source>A&amp;nnounce each sentence to the screen reader</source>
        <translation>各文をスクリーンリーダーにも通知する(&amp;N)</translation>
    </message>
    <message>
        <source>Off by default: the screen reader would speak each sentence while MioDesk reads it aloud.</source>
        <translation>既定はオフです。オンにすると、MioDesk の読み上げと同時にスクリーンリーダーも各文を読み上げます。</translation>
    </message>
    <message>
        <source>Serve MioDesk&apos;s voices to other apps (OpenAI and VOICEVO&amp;X APIs)</source>
        <translation>MioDesk の声をほかのアプリに提供する（OpenAI と VOICEVOX の API）(&amp;X)</translation>
    </message>
    <message>
        <source>Listenin&amp;g port:</source>
        <translation>待ち受けポート(&amp;G)：</translation>
    </message>
    <message>
        <source>API key for re&amp;quests:</source>
        <translation>リクエストの API キー(&amp;Q)：</translation>
    </message>
    <message>
        <source>optional on this computer</source>
        <translation>このコンピューター内では省略可</translation>
    </message>
    <message>
        <source>Copy URL</source>
        <translation>URL をコピー</translation>
    </message>
    <message>
        <source>The server listens on this computer only (127.0.0.1): other apps here can use the voices, other computers cannot. It reads with the models the window uses, one request at a time, and your own reading goes first. VOICEVOX apps use the address without /v1.</source>
        <translation>サーバーはこのコンピューターの中だけで待ち受けます（127.0.0.1）。このコンピューターのほかのアプリは声を使えますが、ほかのコンピューターからは使えません。ウィンドウと同じモデルで一度に一つずつ読み上げ、ウィンドウでの読み上げが優先されます。VOICEVOX 対応アプリには /v1 を付けないアドレスを指定します。</translation>
    </message>
    <message>
        <source>Recommended (from the models folder)</source>
        <translation>おすすめ（モデルフォルダーから）</translation>
    </message>
    <message>
        <source>44.1 kHz v2 (recommended)</source>
        <translation>44.1 kHz v2（おすすめ）</translation>
    </message>
    <message>
        <source>24 kHz (lighter)</source>
        <translation>24 kHz（軽量）</translation>
    </message>
    <message>
        <source>{0} — not installed</source>
        <translation>{0} — 未インストール</translation>
    </message>
    <message>
        <source>{0} (custom folder)</source>
        <translation>{0}（指定フォルダー）</translation>
    </message>
    <message>
        <source>Automatic (GPU if available)</source>
        <translation>自動（使えれば GPU）</translation>
    </message>
    <message>
        <source>{0} — not available</source>
        <translation>{0} — 使用不可</translation>
    </message>
    <message>
        <source>System default</source>
        <translation>システムの既定</translation>
    </message>
    <message>
        <source>{0} (not connected)</source>
        <translation>{0}（未接続）</translation>
    </message>
    <message>
        <source>System language</source>
        <translation>システムの言語</translation>
    </message>
    <message>
        <source>{0} (not installed)</source>
        <translation>{0}(インストールされていません)</translation>
    </message>
    <message>
        <source>Official preset voice: audio made with it may not be used commercially.</source>
        <translation>公式プリセット音声：この声で作った音声は商用利用できません。</translation>
    </message>
    <message>
        <source>No voices installed</source>
        <translation>声がありません</translation>
    </message>
    <message>
        <source>Copy {0} to the clipboard</source>
        <translation>{0} をクリップボードにコピー</translation>
    </message>
    <message>
        <source>Copied {0}</source>
        <translation>{0} をコピーしました</translation>
    </message>
    <message>
        <source>The API key must be printable ASCII without spaces (apps send it in a header).</source>
        <translation>API キーは空白を含まない半角英数字と記号にしてください（アプリはヘッダーで送ります）。</translation>
    </message>
    <message>
        <source>Enter the server&apos;s URL, for example http://gpu-box:8000/v1.</source>
        <translation>サーバーの URL を入力してください（例：http://gpu-box:8000/v1）。</translation>
    </message>
    <message>
        <source>“{0}” is not a valid URL.</source>
        <translation>「{0}」は正しい URL ではありません。</translation>
    </message>
    <message>
        <source>The server URL must start with http:// or https:// (not “{0}”).</source>
        <translation>サーバーの URL は http:// か https:// で始めてください（「{0}」は使えません）。</translation>
    </message>
    <message>
        <source>The server URL has no host name: “{0}”.</source>
        <translation>サーバーの URL にホスト名がありません：「{0}」。</translation>
    </message>
    <message>
        <source>{0}, model {1}, {2} ms round trip, returns audio tokens</source>
        <translation>{0}、モデル {1}、往復 {2} ms、音声トークンを返します</translation>
    </message>
    <message>
        <source>{0}, model {1}, {2} ms round trip, returns no audio tokens: {3}</source>
        <translation>{0}、モデル {1}、往復 {2} ms、音声トークンを返しません：{3}</translation>
    </message>
    <message>
        <source>{0}, model {1}, {2} ms round trip, returns no audio tokens</source>
        <translation>{0}、モデル {1}、往復 {2} ms、音声トークンを返しません</translation>
    </message>
    <message>
        <source>Testing {0}…</source>
        <translation>{0} をテスト中…</translation>
    </message>
    <message>
        <source>Choose a MioTTS model</source>
        <translation>MioTTS モデルを選ぶ</translation>
    </message>
    <message>
        <source>MioTTS models (*.gguf)</source>
        <translation>MioTTS モデル (*.gguf)</translation>
    </message>
</context>
<context>
    <name>ShortcutsPage</name>
    <message>
        <source>Read the &amp;selection:</source>
        <translation>選択範囲を読む(&amp;S):</translation>
    </message>
    <message>
        <source>Read the clip&amp;board:</source>
        <translation>クリップボードを読む(&amp;B):</translation>
    </message>
    <message>
        <source>Restore &amp;defaults</source>
        <translation>既定に戻す(&amp;D)</translation>
    </message>
    <message>
        <source>On macOS, select text in any app and choose Services › Read with MioDesk in the app&apos;s menu; give it a key in System Settings › Keyboard › Keyboard Shortcuts › Services. Press the key again while MioDesk reads to stop it. Shortcuts.app can run the commands too: {0}.</source>
        <translation>macOS では、どのアプリでも文字を選択し、アプリのメニューの「サービス › Read with MioDesk」を選びます。キーは「システム設定 › キーボード › キーボードショートカット › サービス」で割り当てられます。MioDesk が読み上げ中にもう一度押すと止まります。ショートカット.app から次のコマンドも実行できます: {0}。</translation>
    </message>
    <message>
        <source>These keys work in every app, also while the MioDesk window is hidden; pressing one again while MioDesk reads stops it. Your desktop&apos;s own keyboard settings can run the commands instead: {0}.</source>
        <translation>これらのキーはどのアプリでも、MioDesk のウィンドウが隠れているときも使えます。読み上げ中にもう一度押すと止まります。デスクトップのキーボード設定から、代わりに次のコマンドを実行することもできます: {0}。</translation>
    </message>
    <message>
        <source>{0} already reads the clipboard.</source>
        <translation>{0} はすでにクリップボードの読み上げに使われています。</translation>
    </message>
    <message>
        <source>{0} already reads the selection.</source>
        <translation>{0} はすでに選択範囲の読み上げに使われています。</translation>
    </message>
    <message>
        <source>A global shortcut needs Ctrl, Alt or the Super (Windows) key, or it would take the key from every app.</source>
        <translation>グローバルショートカットには Ctrl、Alt、Super（Windows）キーのいずれかが必要です。そうでないと、ほかのすべてのアプリからそのキーを奪ってしまいます。</translation>
    </message>
    <message>
        <source>{0} cannot be a global shortcut.</source>
        <translation>{0} はグローバルショートカットにできません。</translation>
    </message>
    <message>
        <source>No shortcut.</source>
        <translation>ショートカットなし。</translation>
    </message>
    <message>
        <source>Another app already uses {0}: choose another key.</source>
        <translation>{0} はほかのアプリが使っています。別のキーを選んでください。</translation>
    </message>
    <message>
        <source>{0} takes effect when you press OK.</source>
        <translation>{0} は OK を押すと有効になります。</translation>
    </message>
    <message>
        <source>Works in every app: the desktop assigned {0}.</source>
        <translation>どのアプリでも使えます。デスクトップが {0} を割り当てました。</translation>
    </message>
    <message>
        <source>{0} works in every app.</source>
        <translation>{0} はどのアプリでも使えます。</translation>
    </message>
    <message>
        <source>Waiting for the desktop to confirm {0}…</source>
        <translation>デスクトップが {0} を確認するのを待っています…</translation>
    </message>
    <message>
        <source>The desktop did not allow the shortcut. Its own keyboard settings can run the command below instead.</source>
        <translation>デスクトップがショートカットを許可しませんでした。代わりにデスクトップのキーボード設定から下のコマンドを実行できます。</translation>
    </message>
    <message>
        <source>Use Services › Read with MioDesk (see below).</source>
        <translation>「サービス › Read with MioDesk」を使います（下を参照）。</translation>
    </message>
    <message>
        <source>This desktop lets no app set global shortcuts. Its own keyboard settings can run the command below instead.</source>
        <translation>このデスクトップでは、アプリがグローバルショートカットを設定できません。代わりにデスクトップのキーボード設定から下のコマンドを実行できます。</translation>
    </message>
</context>
<context>
    <name>SleepTimer</name>
    <message>
        <source>Sleep timer off.</source>
        <translation>スリープタイマーをオフにしました。</translation>
    </message>
    <message>
        <source>Sleep timer: reading stops after {0} of listening.</source>
        <translation>スリープタイマー: {0}聞いたら読み上げを止めます。</translation>
    </message>
    <message>
        <source>Sleep timer: reading stops at the end of this chapter.</source>
        <translation>スリープタイマー: この章の終わりで読み上げを止めます。</translation>
    </message>
    <message>
        <source>Sleep: end of chapter</source>
        <translation>スリープ: 章の終わり</translation>
    </message>
    <message>
        <source>Sleep: fading out</source>
        <translation>スリープ: フェードアウト中</translation>
    </message>
    <message>
        <source>Sleep {0}</source>
        <translation>スリープ {0}</translation>
    </message>
    <message>
        <source>Sleep timer</source>
        <translation>スリープタイマー</translation>
    </message>
    <message>
        <source>Sleep timer: end of chapter</source>
        <translation>スリープタイマー: 章の終わり</translation>
    </message>
    <message>
        <source>Sleep timer: fading out</source>
        <translation>スリープタイマー: フェードアウト中</translation>
    </message>
    <message>
        <source>Sleep timer: {0} minutes left</source>
        <translation>スリープタイマー: 残り {0} 分</translation>
    </message>
    <message>
        <source>Sleep timer: 1 minute left</source>
        <translation>スリープタイマー: 残り 1 分</translation>
    </message>
    <message>
        <source>Sleep timer: off</source>
        <translation>スリープタイマー: オフ</translation>
    </message>
    <message>
        <source>{0} seconds</source>
        <translation>{0} 秒</translation>
    </message>
    <message>
        <source>1 minute</source>
        <translation>1 分</translation>
    </message>
    <message>
        <source>{0} minutes</source>
        <translation>{0} 分</translation>
    </message>
    <message>
        <source>Sleep timer: 1 minute left.</source>
        <translation>スリープタイマー: 残り 1 分です。</translation>
    </message>
    <message>
        <source>Sleep timer: reading stopped. Play goes on from the sentence that faded out.</source>
        <translation>スリープタイマー: 読み上げを止めました。再生すると、フェードアウトした文から続けます。</translation>
    </message>
    <message>
        <source>Sleep timer: reading stopped at the end of the chapter.</source>
        <translation>スリープタイマー: 章の終わりで読み上げを止めました。</translation>
    </message>
</context>
<context>
    <name>SleepTimerButton</name>
    <message>
        <source>Stop reading after a while, fading out, or at the end of the chapter</source>
        <translation>しばらくしたら、またはこの章の終わりで、音を小さくしながら読み上げを止めます</translation>
    </message>
</context>
<context>
    <name>SleepTimerMenu</name>
    <message>
        <source>Sleep &amp;Timer</source>
        <translation>スリープタイマー(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;Off</source>
        <translation>オフ(&amp;O)</translation>
    </message>
    <message>
        <source>Read on until you stop</source>
        <translation>止めるまで読み続けます</translation>
    </message>
    <message>
        <source>&amp;End of Chapter</source>
        <translation>章の終わり(&amp;E)</translation>
    </message>
    <message>
        <source>Stop when the chapter being read ends (a document without chapters: at its end)</source>
        <translation>読んでいる章が終わったら止めます(章のない文書では、文書の終わりで)</translation>
    </message>
    <message>
        <source>{0} minutes</source>
        <translation>{0} 分</translation>
    </message>
    <message>
        <source>Stop after {0} minutes of listening, fading out (paused time does not count)</source>
        <translation>{0} 分聞いたら、音を小さくしながら止めます(一時停止中の時間は数えません)</translation>
    </message>
</context>
<context>
    <name>TransportBar</name>
    <message>
        <source>Voi&amp;ce</source>
        <translation>声(&amp;C)</translation>
    </message>
    <message>
        <source>The voice that reads; a change applies from the next sentence</source>
        <translation>読み上げる声。変更は次の文から反映されます</translation>
    </message>
    <message>
        <source>&amp;Speed</source>
        <translation>速さ(&amp;S)</translation>
    </message>
    <message>
        <source>Speed</source>
        <translation>速さ</translation>
    </message>
    <message>
        <source>Speaking rate (the pitch stays the same)</source>
        <translation>話す速さ（声の高さは変わりません）</translation>
    </message>
    <message>
        <source>Volume</source>
        <translation>音量</translation>
    </message>
    <message>
        <source>Position</source>
        <translation>位置</translation>
    </message>
    <message>
        <source>Playback controls</source>
        <translation>再生コントロール</translation>
    </message>
</context>
</TS>
